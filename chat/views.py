"""Pages: the chat page (with deep links to rooms) and sign-up."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from chatcluster.conf import chat_settings


@login_required
def index(request: HttpRequest, slug: str = "") -> HttpResponse:
    context = {
        "initial_room": slug,
        "config": {
            "user": request.user.get_username(),
            "room": slug,
            "maxBody": chat_settings.CHAT_MAX_BODY,
            "maxRooms": chat_settings.CHAT_MAX_SUBSCRIPTIONS,
            "defaultRoom": chat_settings.CHAT_DEFAULT_ROOM,
        },
    }
    return render(request, "chatcluster/index.html", context)


class SignupForm(UserCreationForm):
    """Django's sign-up form for whichever user model the host uses (AUTH_USER_MODEL)."""

    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined]
        model = get_user_model()
        fields = (get_user_model().USERNAME_FIELD,)


def safe_next(request: HttpRequest) -> str:
    """`next` from the form or the query string if it stays on this site, else "".

    The check Django's LoginView makes: a foreign host, another scheme (or http from an
    https page), `//evil.example` and `javascript:` are all refused, so sign-up cannot be
    used to send a new user to a look-alike page.
    """
    wanted = (request.POST.get("next") or request.GET.get("next") or "").strip()
    allowed = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return wanted if allowed else ""


def signup(request: HttpRequest) -> HttpResponse:
    if not chat_settings.CHAT_SIGNUP_ENABLED:
        raise Http404("Sign-up is switched off on this server.")
    form = SignupForm(request.POST or None)
    next_url = safe_next(request)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(next_url or settings.LOGIN_REDIRECT_URL)
    return render(request, "chatcluster/signup.html", {"form": form, "next": next_url})
