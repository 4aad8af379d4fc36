"""`python manage.py bench`: the figures, the services they run against, and the measures (one module each)."""
