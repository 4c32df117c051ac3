"""Drives the homeserver with matrix-nio, a real client library: two users
register, one creates a room, invites the other, who joins; a message is
sent, the name and topic set, typing and a read receipt shown, the message
redacted; every step is checked through the other user's sync. Prints OK on
success and exits non-zero otherwise. Usage: nio_client.py <homeserver URL>"""
import asyncio
import sys
import time

from nio import (AsyncClient, JoinResponse, ReceiptEvent, RedactedEvent, RedactionEvent, RegisterResponse,
                 RoomCreateResponse, RoomSendResponse, SyncResponse, TypingNoticeEvent)


async def until(what, client, pred):
    """Syncs the client until pred(sync response) holds, for up to 15 s."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        synced = await client.sync(timeout=2000)
        if not isinstance(synced, SyncResponse):
            raise SystemExit(f"sync failed while waiting for {what}: {synced}")
        if pred(synced):
            return synced
    raise SystemExit(f"timed out waiting for {what}")


def timeline(synced, room_id):
    room = synced.rooms.join.get(room_id)
    return room.timeline.events if room else []


def ephemeral(synced, room_id):
    room = synced.rooms.join.get(room_id)
    return room.ephemeral if room else []


async def main(url):
    alice, bob = AsyncClient(url, "nioalice"), AsyncClient(url, "niobob")
    try:
        for c, name in ((alice, "nioalice"), (bob, "niobob")):
            resp = await c.register(name, "nio-password", "nio device")
            if not isinstance(resp, RegisterResponse):
                raise SystemExit(f"register {name} failed: {resp}")
        created = await alice.room_create(name="nio room", topic="from matrix-nio")
        if not isinstance(created, RoomCreateResponse):
            raise SystemExit(f"room_create failed: {created}")
        room_id = created.room_id
        await alice.room_invite(room_id, bob.user_id)
        await until("bob's invite", bob, lambda s: room_id in s.rooms.invite)
        joined = await bob.join(room_id)
        if not isinstance(joined, JoinResponse):
            raise SystemExit(f"join failed: {joined}")

        sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hello from nio"})
        if not isinstance(sent, RoomSendResponse):
            raise SystemExit(f"room_send failed: {sent}")
        await until("the message at bob", bob, lambda s: any(getattr(e, "event_id", None) == sent.event_id for e in timeline(s, room_id)))
        if bob.rooms[room_id].name != "nio room":
            raise SystemExit(f"room name {bob.rooms[room_id].name!r}")

        await alice.room_put_state(room_id, "m.room.name", {"name": "renamed by nio"})
        await alice.room_put_state(room_id, "m.room.topic", {"topic": "a nio topic"})
        await until("the name and topic at bob", bob,
                    lambda s: bob.rooms[room_id].name == "renamed by nio" and bob.rooms[room_id].topic == "a nio topic")

        await alice.room_typing(room_id, True, 30000)
        await until("alice typing at bob", bob, lambda s: any(
            isinstance(e, TypingNoticeEvent) and alice.user_id in e.users for e in ephemeral(s, room_id)))

        await bob.room_read_markers(room_id, sent.event_id, sent.event_id)
        await until("bob's receipt at alice", alice, lambda s: any(
            isinstance(e, ReceiptEvent) and any(r.event_id == sent.event_id and r.user_id == bob.user_id for r in e.receipts)
            for e in ephemeral(s, room_id)))

        await alice.room_redact(room_id, sent.event_id, reason="nio test")
        await until("the redaction at bob", bob, lambda s: any(
            isinstance(e, RedactionEvent) and e.redacts == sent.event_id for e in timeline(s, room_id)))

        # A fresh sync serves the message redacted.
        bob.next_batch = None
        await until("the redacted message in a fresh sync", bob, lambda s: any(
            isinstance(e, RedactedEvent) and e.event_id == sent.event_id for e in timeline(s, room_id)))
        print("OK", room_id, sent.event_id)
    finally:
        await alice.close()
        await bob.close()


asyncio.run(main(sys.argv[1]))
