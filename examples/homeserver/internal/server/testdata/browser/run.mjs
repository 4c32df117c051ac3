// Opens the page in headless Chromium, waits until hydrogen has logged in
// and sent its message and until the other user's message is on screen,
// then saves a screenshot. Usage:
// node run.mjs <page URL> <text expected on screen> <screenshot path>
import puppeteer from "puppeteer-core";

const [url, expect, shot] = process.argv.slice(2);
const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
let failed = false;
try {
    const page = await browser.newPage();
    page.on("console", (m) => console.log("page:", m.type(), m.text()));
    page.on("pageerror", (e) => console.log("page error:", e.message));
    await page.setViewport({ width: 900, height: 700 });
    await page.goto(url);
    await page.waitForFunction(() => document.title === "sent" || document.title.startsWith("error"), { timeout: 60000 });
    const title = await page.title();
    if (title !== "sent") throw new Error("page: " + title);
    await page.waitForFunction((t) => document.body.innerText.includes(t), { timeout: 30000 }, expect);
    await page.screenshot({ path: shot });
    console.log("SCREENSHOT " + shot);
    console.log("OK");
} catch (e) {
    failed = true;
    console.error("FAIL:", e.message);
} finally {
    await browser.close();
}
process.exit(failed ? 1 : 0);
