"""Network helpers that handle user-supplied addresses safely."""

from loupe.net.safe_fetch import UrlFetchError, fetch_url

__all__ = ["UrlFetchError", "fetch_url"]
