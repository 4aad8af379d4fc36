"""Static files under a sync stack (the test client, a WSGI server): only a request for a static file goes through
servestatic's async-only middleware; a page passes straight on, with no event loop per request."""

from django.http import HttpResponse

from config import middleware


def test_the_sync_path_sends_only_static_files_through_servestatic(rf):
    pages, through_servestatic = [], []

    def view(request):
        pages.append(request.path_info)
        return HttpResponse("page")

    wrapped = middleware.StaticFilesMiddleware(view)
    serve = wrapped.serve_sync
    wrapped.serve_sync = lambda request: through_servestatic.append(request.path_info) or serve(request)
    assert not wrapped.is_async
    assert wrapped(rf.get("/goals/")).content == b"page"
    assert wrapped(rf.get("/static/no-such-file.css")).content == b"page"  # not found: the page behind it
    assert through_servestatic == ["/static/no-such-file.css"] and pages == ["/goals/", "/static/no-such-file.css"]


async def test_the_async_path_is_servestatic_as_it_comes():
    async def view(request):
        return HttpResponse("page")

    wrapped = middleware.StaticFilesMiddleware(view)
    assert wrapped.is_async
    from servestatic.middleware import ServeStaticMiddleware

    assert isinstance(wrapped.serve, ServeStaticMiddleware)
