// JSON calls to the HTTP API, with the CSRF token and a login redirect on 401.

export function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : (document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/) ?? [])[1] ?? "";
}

export async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    ...options,
    headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
  });
  if (response.status === 401) goToLogin();
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(data.detail || `HTTP ${response.status}`), { code: data.error });
  return data;
}

export function goToLogin() {
  window.location.assign(`/accounts/login/?next=${encodeURIComponent(window.location.pathname)}`);
}
