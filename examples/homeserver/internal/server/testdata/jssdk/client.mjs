// Drives the example homeserver with matrix-js-sdk: two users log in, one
// creates a room and invites the other, who joins; text and an image are
// sent, the name and topic set, typing and a read receipt shown, a message
// redacted. Every step is checked through the other user's /sync.
// Usage: node client.mjs <base URL>. Prints "OK" on success.
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

logger.setLevel("warn");
const base = process.argv[2];
if (!base) {
    console.error("usage: node client.mjs <base URL>");
    process.exit(2);
}

// until polls the predicate every 25 ms until it holds or 15 s pass.
async function until(what, pred) {
    const deadline = Date.now() + 15000;
    for (;;) {
        if (await pred()) return;
        if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
        await new Promise((r) => setTimeout(r, 25));
    }
}

async function register(name) {
    const body = { username: name, password: "pw-" + name, auth: { type: "m.login.dummy" } };
    const res = await fetch(base + "/_matrix/client/v3/register", { method: "POST", body: JSON.stringify(body) });
    if (res.status !== 200) throw new Error("register " + name + ": " + res.status + " " + (await res.text()));
}

async function login(name) {
    const anon = sdk.createClient({ baseUrl: base });
    const creds = await anon.loginRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: name }, password: "pw-" + name });
    const client = sdk.createClient({ baseUrl: base, accessToken: creds.access_token, userId: creds.user_id, deviceId: creds.device_id });
    const prepared = new Promise((resolve, reject) => {
        client.on(sdk.ClientEvent.Sync, (state, _prev, data) => {
            if (state === "PREPARED") resolve();
            if (state === "ERROR") reject(new Error(name + ": sync error " + (data && data.error)));
        });
    });
    await client.startClient({ initialSyncLimit: 20 });
    await prepared;
    return client;
}

function timelineOf(client, roomId) {
    const room = client.getRoom(roomId);
    return room ? room.getLiveTimeline().getEvents() : [];
}

// A 2x2 PNG.
const png = Buffer.from(
    "89504e470d0a1a0a0000000d4948445200000002000000020806000000f478d4fa0000001649444154789c63f8cfc0f01f0418181818fe33fc0700001cf003fd5a7c2f5f0000000049454e44ae426082",
    "hex",
);

async function main() {
    await register("alice");
    await register("bob");
    const alice = await login("alice");
    const bob = await login("bob");

    const { room_id: roomId } = await alice.createRoom({ name: "js-sdk room", preset: "private_chat" });
    await alice.invite(roomId, bob.getUserId());
    await until("bob's invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite");
    await bob.joinRoom(roomId);
    await until("bob's join seen by alice", () => alice.getRoom(roomId)?.getMember(bob.getUserId())?.membership === "join");

    const text = await alice.sendTextMessage(roomId, "hello from js-sdk");
    await until("the text message at bob", () => timelineOf(bob, roomId).some((e) => e.getId() === text.event_id && e.getContent().body === "hello from js-sdk"));

    const up = await alice.uploadContent(png, { type: "image/png", name: "dot.png" });
    const img = await alice.sendImageMessage(roomId, up.content_uri, { mimetype: "image/png", w: 2, h: 2, size: png.length }, "dot.png");
    await until("the image at bob", () => timelineOf(bob, roomId).some((e) => e.getId() === img.event_id && e.getContent().url === up.content_uri));
    const url = bob.mxcUrlToHttp(up.content_uri, undefined, undefined, undefined, false, true, true);
    const got = await fetch(url, { headers: { Authorization: "Bearer " + bob.getAccessToken() } });
    const bytes = Buffer.from(await got.arrayBuffer());
    if (got.status !== 200 || !bytes.equals(png)) throw new Error("image download: " + got.status + ", " + bytes.length + " bytes");

    await alice.setRoomName(roomId, "renamed by js-sdk");
    await alice.setRoomTopic(roomId, "a topic");
    await until("the name and topic at bob", () => {
        const room = bob.getRoom(roomId);
        return room?.name === "renamed by js-sdk" && room.currentState.getStateEvents("m.room.topic", "")?.getContent().topic === "a topic";
    });

    await alice.sendTyping(roomId, true, 30000);
    await until("alice typing at bob", () => bob.getRoom(roomId)?.getMember(alice.getUserId())?.typing === true);
    await alice.sendTyping(roomId, false, 0);
    await until("alice stopped typing at bob", () => bob.getRoom(roomId)?.getMember(alice.getUserId())?.typing === false);

    const textAtBob = timelineOf(bob, roomId).find((e) => e.getId() === text.event_id);
    await bob.sendReadReceipt(textAtBob);
    await until("bob's receipt at alice", () => alice.getRoom(roomId)?.getUsersReadUpTo(alice.getRoom(roomId).findEventById(text.event_id)).includes(bob.getUserId()));

    await alice.redactEvent(roomId, text.event_id, undefined, { reason: "test" });
    await until("the redaction at bob", () => timelineOf(bob, roomId).find((e) => e.getId() === text.event_id)?.isRedacted());

    // A fresh client of bob's sees the message already redacted.
    bob.stopClient();
    const bob2 = await login("bob");
    await until("the redacted message in a fresh sync", async () => {
        const res = await bob2.createMessagesRequest(roomId, null, 50, "b");
        const ev = res.chunk.find((e) => e.event_id === text.event_id);
        return ev && Object.keys(ev.content).length === 0 && ev.unsigned?.redacted_because;
    });

    alice.stopClient();
    bob2.stopClient();
    console.log("OK");
}

main().then(
    () => process.exit(0),
    (err) => {
        console.error("FAIL:", err && err.stack ? err.stack : err);
        process.exit(1);
    },
);
