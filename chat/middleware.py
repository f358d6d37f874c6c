"""Response headers Django's own middleware does not set: the CSP and a Permissions-Policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from chatcluster.conf import chat_settings


class SecurityHeadersMiddleware:
    """Adds CONTENT_SECURITY_POLICY and PERMISSIONS_POLICY to every response that lacks them."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        response = self.get_response(request)
        assert isinstance(response, HttpResponseBase)
        return self._add(response)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        assert not isinstance(response, HttpResponseBase)
        return self._add(await response)

    @staticmethod
    def _add(response: HttpResponseBase) -> HttpResponseBase:
        if chat_settings.CHAT_CSP:
            response.headers.setdefault("Content-Security-Policy", chat_settings.CHAT_CSP)
        if chat_settings.CHAT_PERMISSIONS_POLICY:
            response.headers.setdefault("Permissions-Policy", chat_settings.CHAT_PERMISSIONS_POLICY)
        return response
