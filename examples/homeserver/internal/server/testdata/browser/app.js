// A web Matrix client page: hydrogen-view-sdk logs in, opens a room and
// shows its timeline; the page sends a message through the room and
// reports progress in document.title ("ready", "sent", or "error: ...").
// Parameters come from the URL: ?hs=<base URL>&user=<name>&password=<pw>&room=<room ID>&text=<message>.
import { Platform, Client, LoadStatus, createNavigation, createRouter, RoomViewModel, TimelineView, viewClassForTile, FeatureSet } from "hydrogen-view-sdk";

const assetPaths = {
    downloadSandbox: "download-sandbox.html",
    worker: "main.js",
    olm: { wasm: "olm.wasm", legacyBundle: "olm_legacy.js", wasmBundle: "olm.js" },
    serviceWorker: "sw.js",
};

async function main() {
    const q = new URLSearchParams(location.search);
    const app = document.querySelector("#app");
    const platform = new Platform({ container: app, assetPaths, config: {}, options: { development: false } });
    const navigation = createNavigation();
    platform.setNavigation(navigation);
    await platform.init();
    const urlRouter = createRouter({ navigation, history: platform.history });
    urlRouter.attach();
    const client = new Client(platform);
    const loginOptions = await client.queryLogin(q.get("hs")).result;
    client.startWithLogin(loginOptions.password(q.get("user"), q.get("password")));
    await client.loadStatus.waitFor((s) => s === LoadStatus.Ready || s === LoadStatus.Error || s === LoadStatus.LoginFailed).promise;
    if (client.loginFailure) throw new Error("login failed: " + client.loginFailure);
    if (client.loadError) throw new Error("load failed: " + client.loadError.message);
    const { session } = client;
    let room;
    for (let i = 0; i < 200 && !(room = session.rooms.get(q.get("room"))); i++) {
        await new Promise((r) => setTimeout(r, 50));
    }
    if (!room) throw new Error("room not in the session");
    const features = await FeatureSet.load(platform.settingsStorage);
    const vm = new RoomViewModel({ room, ownUserId: session.userId, platform, urlRouter, navigation, features });
    await vm.load();
    const view = new TimelineView(vm.timelineViewModel, viewClassForTile);
    app.appendChild(view.mount());
    document.title = "ready";
    await room.sendEvent("m.room.message", { msgtype: "m.text", body: q.get("text") });
    document.title = "sent";
}

main().catch((e) => {
    console.error(e);
    document.title = "error: " + (e && e.message ? e.message : e);
});
