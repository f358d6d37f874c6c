"""Pages: the chat page (with deep links to rooms) and sign-up."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render


@login_required
def index(request: HttpRequest, slug: str = "") -> HttpResponse:
    context = {
        "initial_room": slug,
        "config": {
            "user": request.user.get_username(),
            "room": slug,
            "maxBody": settings.CHAT_MAX_BODY,
        },
    }
    return render(request, "chat/index.html", context)


def signup(request: HttpRequest) -> HttpResponse:
    if not settings.SIGNUP_ENABLED:
        raise Http404("Sign-up is switched off on this server.")
    form: UserCreationForm[User] = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(request.GET.get("next") or settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {"form": form})
