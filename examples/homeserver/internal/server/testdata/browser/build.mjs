// Bundles app.js with esbuild and copies the assets hydrogen needs into
// dist/. Usage: node build.mjs
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";

mkdirSync("dist", { recursive: true });
await build({ entryPoints: ["app.js"], bundle: true, format: "esm", outfile: "dist/app.bundle.js", logLevel: "warning",
    // olm.js requires these only when it runs under Node.
    external: ["crypto", "path", "fs"] });
const assets = "node_modules/hydrogen-view-sdk/asset-build/assets/";
for (const f of readdirSync(assets)) copyFileSync(assets + f, "dist/" + f);
copyFileSync("node_modules/hydrogen-view-sdk/lib-build/sw.js", "dist/sw.js");
for (const f of ["olm.wasm", "olm.js", "olm_legacy.js"]) copyFileSync("node_modules/@matrix-org/olm/" + f, "dist/" + f);
copyFileSync("index.html", "dist/index.html");
