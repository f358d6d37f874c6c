// Compile-only: client.d.ts in a browser setting (lib "dom", no Node types), as the page uses it.
import { ChatClient, type WebSocketConstructor } from "../../chat/static/chatcluster/client.js";

const client = new ChatClient(); // url from location, the global WebSocket
const explicit = new ChatClient({ url: `wss://${location.host}/ws/`, WebSocketImpl: WebSocket });
const impl: WebSocketConstructor = WebSocket;

client.addEventListener("state", (ev) => {
  document.body.dataset.conn = ev.detail.state;
});
client.addEventListener("message", ({ detail: msg }) => {
  document.title = `${msg.user}: ${msg.body}`;
});
client.addEventListener("delete", ({ detail }) => {
  document.getElementById(`m-${detail.room}-${detail.target}`)?.remove();
});
document.body.addEventListener("click", () => void client.react("general", 1, "👍").catch((err) => console.log(err.code)));
window.addEventListener("online", () => client.reconnectNow());
client.connect();
console.log(explicit, impl);
