import json

from channels.generic.websocket import AsyncWebsocketConsumer


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.group = f"chat_{self.room}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        data = json.loads(text_data or "{}")
        await self.channel_layer.group_send(self.group, {"type": "chat.message", "body": data.get("body", "")})
        if "ref" in data:
            await self.send(text_data=json.dumps({"type": "ack", "ref": data["ref"]}))

    async def chat_message(self, event: dict[str, str]) -> None:
        await self.send(text_data=json.dumps({"type": "message", "room": self.room, "body": event["body"]}))
