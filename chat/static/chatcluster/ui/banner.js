// The connection banner: state text, retry countdown, "retry now" button.

import { client } from "../state.js";
import { ui } from "../dom.js";

let bannerState = { state: "connecting" };

export function renderBanner() {
  const { state, retryAt, code } = bannerState;
  ui.banner.dataset.state = state;
  ui.bannerRetry.hidden = state !== "reconnecting";
  let text = "Connecting…";
  if (state === "online") text = "Online";
  else if (state === "catching-up") text = "Catching up…";
  else if (state === "offline") text = code === 4403 ? "Connection refused: open the chat from its own address" : "Offline";
  else if (state === "reconnecting") {
    const secs = retryAt ? Math.ceil((retryAt - Date.now()) / 1000) : 0;
    text = secs > 0 ? `Reconnecting in ${secs} s…` : "Reconnecting…";
  }
  if (ui.bannerText.textContent !== text) ui.bannerText.textContent = text;
}

export function setBannerState(detail) {
  bannerState = detail;
  renderBanner();
}

ui.bannerRetry.addEventListener("click", () => client.reconnectNow());
setInterval(renderBanner, 250);
