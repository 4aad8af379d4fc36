import base64

from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management.base import BaseCommand

from config.settings import vapid_public_key_for


class Command(BaseCommand):
    help = "Print a new VAPID key pair for Web Push, as lines for the environment."

    def handle(self, *args, **options) -> None:
        number = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
        private_raw = base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()
        self.stdout.write(
            "# Web Push keys. Put these lines in the environment; keep the private key secret.\n"
            "# Changing them later unsubscribes every device: each must subscribe again.\n"
            "# VAPID_PUBLIC_KEY is the browser's applicationServerKey (uncompressed P-256 point, base64url);\n"
            "# VAPID_PRIVATE_KEY is the raw 32-byte P-256 private key, base64url without padding.\n"
            f"VAPID_PUBLIC_KEY={vapid_public_key_for(private_raw)}\n"
            f"VAPID_PRIVATE_KEY={private_raw}\n"
        )
