"""Drives the homeserver with matrix-nio, a real client library: register,
create a room, send a message, sync and find it. Prints OK on success and
exits non-zero otherwise. Usage: nio_client.py <homeserver URL>"""
import asyncio
import sys

from nio import AsyncClient, RegisterResponse, RoomCreateResponse, RoomSendResponse, SyncResponse


async def main(url):
    client = AsyncClient(url, "niouser")
    try:
        resp = await client.register("niouser", "nio-password", "nio device")
        if not isinstance(resp, RegisterResponse):
            raise SystemExit(f"register failed: {resp}")
        created = await client.room_create(name="nio room", topic="from matrix-nio")
        if not isinstance(created, RoomCreateResponse):
            raise SystemExit(f"room_create failed: {created}")
        sent = await client.room_send(created.room_id, "m.room.message", {"msgtype": "m.text", "body": "hello from nio"})
        if not isinstance(sent, RoomSendResponse):
            raise SystemExit(f"room_send failed: {sent}")
        for _ in range(10):
            synced = await client.sync(timeout=2000)
            if not isinstance(synced, SyncResponse):
                raise SystemExit(f"sync failed: {synced}")
            room = synced.rooms.join.get(created.room_id)
            if room and any(getattr(e, "event_id", None) == sent.event_id for e in room.timeline.events):
                name = client.rooms[created.room_id].name
                if name != "nio room":
                    raise SystemExit(f"room name {name!r}")
                print("OK", created.room_id, sent.event_id)
                return
        raise SystemExit("message not seen in sync")
    finally:
        await client.close()


asyncio.run(main(sys.argv[1]))
