// Browser tests of the io_board and car example pages, in Debian's chromium
// driven by playwright-core (never Playwright's own browser builds).
//
//   node --experimental-websocket tests/browser/run.mjs
//
// Starts the release example binaries (STDWS_EXAMPLES, or
// $CARGO_TARGET_DIR/release/examples, or target/release/examples), opens
// their pages, and checks what a person would see, against independent
// WebSocket clients (Node's own WebSocket) and REST calls. Every request a
// page makes must go to its own server: anything else is blocked and fails
// the run. Screenshots go to target/screenshots/, and to docs/screenshots/
// with UPDATE_SCREENSHOTS=1.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const EXAMPLES =
  process.env.STDWS_EXAMPLES ??
  path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target"), "release", "examples");
const SCREENSHOTS = path.join(ROOT, "docs", "screenshots");
const TAKEN = path.join(ROOT, "target", "screenshots");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT = 10_000;

if (typeof WebSocket === "undefined") {
  throw new Error("no global WebSocket: run with node --experimental-websocket (Node 20)");
}

// ---------------------------------------------------------------------------
// Example processes and clients
// ---------------------------------------------------------------------------

/** Starts an example on `listen` and resolves once it prints its `listening` line. */
async function startExample(name, listen = "127.0.0.1:0", args = []) {
  const proc = spawn(path.join(EXAMPLES, name), ["--listen", listen, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (chunk) => (stderr += chunk));
  const lines = createInterface({ input: proc.stdout });
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no listening line\n${stderr}`)), TIMEOUT);
    proc.on("error", reject);
    proc.on("exit", (code) => reject(new Error(`${name} exited with ${code}\n${stderr}`)));
    lines.on("line", (line) => {
      const m = line.match(/listening on http:\/\/([^/]+)\//);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return {
    addr,
    origin: `http://${addr}`,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGKILL");
        await once(proc, "exit");
      }
    },
  };
}

/** A WebSocket client that queues the JSON messages it receives. */
class Client {
  static async open(addr) {
    const client = new Client(`ws://${addr}/`);
    await client.opened;
    return client;
  }

  constructor(url) {
    this.received = [];
    this.wake = () => {};
    this.ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    this.ws.onmessage = (event) => {
      this.received.push(JSON.parse(event.data));
      this.wake();
    };
  }

  /** Waits for the next message that matches; earlier ones are skipped. */
  async next(matches, what) {
    const skipped = [];
    const deadline = Date.now() + TIMEOUT;
    for (;;) {
      while (this.received.length) {
        const msg = this.received.shift();
        if (matches(msg)) return msg;
        skipped.push(msg);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no message ${what}; got ${JSON.stringify(skipped)}`);
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  send(value) {
    this.ws.send(JSON.stringify(value));
  }

  close() {
    this.ws.close();
  }
}

async function rest(origin, method, route, body) {
  const response = await fetch(origin + route, { method, body });
  assert.equal(response.status, 200, `${method} ${route}`);
  return response.json();
}

// ---------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------

let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright adds a fresh --user-data-dir of its own for each launch.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
});

/**
 * A page whose every request must go to `server`'s origin: others are
 * aborted and recorded in `offsite`, which each suite checks at the end.
 */
async function openPage(server, viewport) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const offsite = [];
  const allowed = (url) => url.startsWith(`${server.origin}/`) || url.startsWith("data:");
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (allowed(url)) return route.continue();
    offsite.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("request", (request) => {
    if (!allowed(request.url())) offsite.push(request.url());
  });
  page.on("websocket", (ws) => {
    if (!ws.url().startsWith(`ws://${server.addr}/`)) offsite.push(ws.url());
  });
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  return { context, page, offsite, errors };
}

/**
 * Takes a screenshot for the README, with the mouse away and transitions
 * finished, into target/screenshots/; with UPDATE_SCREENSHOTS=1 (or when
 * missing) also into docs/screenshots/. Rendering varies by a few
 * anti-aliased pixels from run to run, so the committed ones change only
 * when asked.
 */
async function screenshot(page, name) {
  await page.mouse.move(0, 0);
  await page.waitForFunction(() => document.getAnimations().every((a) => a.playState !== "running"));
  const png = await page.screenshot({ path: path.join(TAKEN, name), animations: "disabled" });
  assert.ok(png.length > 1000, `screenshot ${name} is empty`);
  const committed = path.join(SCREENSHOTS, name);
  if (process.env.UPDATE_SCREENSHOTS === "1" || !existsSync(committed)) {
    mkdirSync(SCREENSHOTS, { recursive: true });
    copyFileSync(path.join(TAKEN, name), committed);
  }
}

// ---------------------------------------------------------------------------
// io_board
// ---------------------------------------------------------------------------

/** Waits until the page shows `values` (8 of 0/1) for "input" or "output". */
async function pageShows(page, kind, values) {
  try {
    await page.waitForFunction(
      ([kind, values]) =>
        values.every((v, i) => {
          const line = document.querySelector(`[data-${kind}="${i}"]`);
          return line && line.classList.contains("on") === (v === 1);
        }),
      [kind, values],
      { timeout: TIMEOUT },
    );
  } catch (e) {
    const shown = await page.$$eval(`[data-${kind}]`, (ls) => ls.map((l) => (l.classList.contains("on") ? 1 : 0)));
    throw new Error(`page shows ${kind}s ${JSON.stringify(shown)}, expected ${JSON.stringify(values)}`);
  }
}

describe("io_board page", () => {
  let server, page, context, offsite, errors, watcher;

  before(async () => {
    server = await startExample("io_board");
    ({ page, context, offsite, errors } = await openPage(server, { width: 880, height: 540 }));
  });

  after(async () => {
    watcher?.close();
    await context?.close();
    await server?.stop();
  });

  test("renders 8 inputs and 8 outputs from the server's state", async () => {
    await rest(server.origin, "POST", "/io/outputs", "[1,0,1,0,0,0,0,0]");
    await rest(server.origin, "POST", "/io/inputs/2", "1");
    await page.goto(server.origin + "/");
    await page.locator("#status.live").waitFor();
    assert.equal(await page.locator("[data-input]").count(), 8);
    assert.equal(await page.locator("button[data-output]").count(), 8);
    await pageShows(page, "output", [1, 0, 1, 0, 0, 0, 0, 0]);
    await pageShows(page, "input", [0, 0, 1, 0, 0, 0, 0, 0]);
  });

  test("clicking an output changes it for every WebSocket client", async () => {
    watcher = await Client.open(server.addr);
    await watcher.next((m) => m.outputs, "with the status on connect");
    await page.locator('[data-output="5"]').click();
    const status = await watcher.next((m) => m.outputs?.[5] === 1, "with output 5 on");
    assert.deepEqual(status.outputs, [1, 0, 1, 0, 0, 1, 0, 0]);
    await pageShows(page, "output", [1, 0, 1, 0, 0, 1, 0, 0]);
    assert.equal(await page.locator('[data-output="5"]').getAttribute("aria-pressed"), "true");
    // And off again.
    await page.locator('[data-output="0"]').click();
    await watcher.next((m) => m.outputs?.[0] === 0, "with output 0 off");
    assert.deepEqual((await rest(server.origin, "GET", "/io")).outputs, [0, 0, 1, 0, 0, 1, 0, 0]);
  });

  test("changes from a WebSocket client and over REST show on the page", async () => {
    watcher.send([0, 1, 0, 0, 0, 0, 1, 1]);
    await pageShows(page, "output", [0, 1, 0, 0, 0, 0, 1, 1]);
    await rest(server.origin, "POST", "/io/inputs/0", "1");
    await rest(server.origin, "POST", "/io/inputs/5", "1");
    await pageShows(page, "input", [1, 0, 1, 0, 0, 1, 0, 0]);
  });

  test("the server panel shows a few of GET /stats's counters", async () => {
    // The page asks every 5 s: wait for a round after the messages above
    // (two clicks from the page, one array from the watcher).
    await page.waitForFunction(() => Number(document.getElementById("stat-in").textContent) >= 3, null, {
      timeout: 3 * TIMEOUT,
    });
    const stats = await rest(server.origin, "GET", "/stats");
    assert.ok(stats.messages_in >= 3 && stats.messages_out >= 3, JSON.stringify(stats));
    // The page's WebSocket and the watcher's, at least.
    assert.ok(Number(await page.locator("#stat-open").textContent()) >= 2);
    assert.ok(Number(await page.locator("#stat-out").textContent()) >= 3);
    assert.equal(await page.locator("#stat-refused").textContent(), "0");
    await screenshot(page, "io_board.png");
  });

  test("an invalid message gets an error for its sender only", async () => {
    watcher.send({ outputs: [1, 1, 1, 1, 1, 1, 1, 1] });
    const error = await watcher.next((m) => m.error, "with an error");
    assert.match(error.error, /expected an array/);
    assert.equal(await page.locator("#error").textContent(), "");
  });

  test("reconnects when the server restarts", async () => {
    const addr = server.addr;
    await server.stop();
    await page.locator("#status.down").waitFor();
    server = await startExample("io_board", addr);
    await page.locator("#status.live").waitFor();
    // A fresh device: the page shows its state, then follows its changes.
    await pageShows(page, "output", [0, 0, 0, 0, 0, 0, 0, 0]);
    await pageShows(page, "input", [0, 0, 0, 0, 0, 0, 0, 0]);
    await rest(server.origin, "POST", "/io/outputs/3", "1");
    await pageShows(page, "output", [0, 0, 0, 1, 0, 0, 0, 0]);
  });

  test("loads nothing from anywhere but its server", () => {
    assert.deepEqual(offsite, []);
    assert.deepEqual(errors, []);
  });
});

// ---------------------------------------------------------------------------
// car
// ---------------------------------------------------------------------------

describe("car page", () => {
  let server, page, context, offsite, errors, watcher;

  before(async () => {
    server = await startExample("car");
    ({ page, context, offsite, errors } = await openPage(server, { width: 720, height: 420 }));
    watcher = await Client.open(server.addr);
    await watcher.next((m) => m.motion === "stop", "with the motion on connect");
    await page.goto(server.origin + "/");
    await page.locator("#status.live").waitFor();
    // Records every motion the page displays.
    await page.evaluate(() => {
      const motion = document.getElementById("motion");
      window.shown = [motion.textContent];
      new MutationObserver(() => window.shown.push(motion.textContent)).observe(motion, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
  });

  after(async () => {
    watcher?.close();
    await context?.close();
    await server?.stop();
  });

  test("clicking a direction drives the car for every client and the page shows it", async () => {
    await page.locator("#duration").fill("3");
    await page.locator('[data-command="up"]').click();
    const up = await watcher.next((m) => m.motion === "up", "with motion up");
    assert.deepEqual(up, { motion: "up", duration: 3 });
    await page.waitForFunction(() => document.getElementById("motion").textContent === "up");
    assert.equal(await page.locator('[data-command="up"].active').count(), 1);
    await screenshot(page, "car.png");
    await page.locator('[data-command="stop"]').click();
    await watcher.next((m) => m.motion === "stop" && m.duration === 3, "with motion stop");
  });

  test("the page shows the stop when the duration runs out", async () => {
    await page.locator("#duration").fill("0.2");
    await page.locator('[data-command="left"]').click();
    assert.deepEqual(await watcher.next((m) => m.motion === "left", "with motion left"), {
      motion: "left",
      duration: 0.2,
    });
    await watcher.next((m) => m.motion === "stop" && m.duration === undefined, "with the stop");
    await page.waitForFunction(() => window.shown.at(-1) === "stop" && window.shown.includes("left"));
  });

  test("arrow keys and raw commands drive the car too", async () => {
    await page.evaluate(() => document.activeElement?.blur());
    await page.keyboard.down("ArrowRight");
    await page.keyboard.up("ArrowRight");
    await watcher.next((m) => m.motion === "right", "with motion right");
    await page.locator("#raw").fill("34");
    await page.locator("#send-raw").click();
    const raw = await watcher.next((m) => m.motion === "raw", "with motion raw");
    assert.deepEqual(raw, { motion: "raw", duration: 0.2, data: 34 });
    await page.waitForFunction(() => document.getElementById("detail").textContent.includes("data 34"));
  });

  test("loads nothing from anywhere but its server", () => {
    assert.deepEqual(offsite, []);
    assert.deepEqual(errors, []);
  });
});

// ---------------------------------------------------------------------------
// echo with permessage-deflate
// ---------------------------------------------------------------------------

describe("echo page with permessage-deflate", () => {
  let server, page, context, offsite, errors;

  before(async () => {
    server = await startExample("echo", "127.0.0.1:0", ["--deflate"]);
    ({ page, context, offsite, errors } = await openPage(server, { width: 640, height: 360 }));
    await page.goto(server.origin + "/");
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("connected"));
  });

  after(async () => {
    await context?.close();
    await server?.stop();
  });

  test("chromium negotiates permessage-deflate with the server", async () => {
    const extensions = await page.evaluate(() => window.echoSocket.extensions);
    assert.match(extensions, /^permessage-deflate/);
  });

  test("text and binary messages round-trip compressed", async () => {
    const results = await page.evaluate(async () => {
      const ws = window.echoSocket;
      ws.binaryType = "arraybuffer";
      const echo = (data) =>
        new Promise((resolve) => {
          ws.addEventListener("message", (e) => resolve(e.data), { once: true });
          ws.send(data);
        });
      const text = JSON.stringify({ inputs: [0, 1, 0, 0, 1, 0, 0, 0] }).repeat(2000) + " ✓";
      const bytes = new Uint8Array(300000).map((_, i) => (i * 7) % 13);
      const small = await echo("hi");
      const big = await echo(text);
      const binary = new Uint8Array(await echo(bytes));
      return {
        small,
        bigSame: big === text,
        binarySame: binary.length === bytes.length && binary.every((b, i) => b === bytes[i]),
      };
    });
    assert.deepEqual(results, { small: "hi", bigSame: true, binarySame: true });
  });

  test("loads nothing from anywhere but its server", () => {
    assert.deepEqual(offsite, []);
    assert.deepEqual(errors, []);
  });
});

// ---------------------------------------------------------------------------
// io_board over https:// and wss://, TLS by the server itself (examples/tls)
// ---------------------------------------------------------------------------

const TLS_EXAMPLE = process.env.STDWS_TLS;

describe("io_board page over https and wss (examples/tls)", { skip: !TLS_EXAMPLE && "STDWS_TLS is not set" }, () => {
  let proc, addr, context;

  before(async () => {
    proc = spawn(TLS_EXAMPLE, ["127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
    const lines = createInterface({ input: proc.stdout });
    addr = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("stdws-tls: no listening line")), TIMEOUT);
      proc.on("exit", (code) => reject(new Error(`stdws-tls exited with ${code}`)));
      lines.on("line", (line) => {
        const m = line.match(/listening on https:\/\/([^/]+)\//);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    // The certificate is self-signed: the browser is told to accept it.
    context = await browser.newContext({ ignoreHTTPSErrors: true });
  });

  after(async () => {
    await context?.close();
    if (proc && proc.exitCode === null) {
      proc.kill("SIGKILL");
      await once(proc, "exit");
    }
  });

  test("loads the page over https, goes live over wss, and an output click round-trips", async () => {
    const origin = `https://${addr}`;
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    const sockets = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(origin + "/");
    await page.locator("#status.live").waitFor();
    assert.deepEqual(sockets, [`wss://${addr}/`]);
    await page.locator('[data-output="3"]').click();
    await pageShows(page, "output", [0, 0, 0, 1, 0, 0, 0, 0]);
    // The REST API on the same https origin saw it.
    const outputs = await page.evaluate(async () => (await fetch("/io/outputs")).json());
    assert.deepEqual(outputs, [0, 0, 0, 1, 0, 0, 0, 0]);
    // And a WebSocket of the page's own echoes over wss.
    const echoed = await page.evaluate(
      (url) =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(url);
          ws.onopen = () => ws.send("over wss ✓");
          ws.onmessage = (event) => resolve(event.data);
          ws.onerror = () => reject(new Error("wss echo failed"));
        }),
      `wss://${addr}/echo`,
    );
    assert.equal(echoed, "over wss ✓");
  });
});
