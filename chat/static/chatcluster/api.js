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
  if (!response.ok) {
    throw Object.assign(new Error(data.detail || `HTTP ${response.status}`), { code: data.error, status: response.status });
  }
  return data;
}

export function post(path, body = {}, options = {}) {
  return api(path, { ...options, method: "POST", body: JSON.stringify(body) });
}

/** A query string from `params`, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  return search.toString();
}

/** Run `fn` once the calls stop for `ms`: a search box asks once per pause in typing. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function goToLogin() {
  window.location.assign(`/accounts/login/?next=${encodeURIComponent(window.location.pathname)}`);
}
