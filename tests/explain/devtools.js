// Headless Chromium driven over the DevTools protocol (--remote-debugging-pipe: fds 3 and 4,
// NUL-separated JSON; no npm packages), for the browser tests of the explain pages. open(page)
// resolves once the page has loaded; the session evaluates expressions, moves and clicks the
// mouse, takes screenshots and lists script errors and console errors or warnings.
const { spawn } = require('child_process');
const fs = require('fs');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function launch(profile) {
  const chrome = spawn('chromium', ['--headless', '--no-sandbox', '--disable-gpu',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--hide-scrollbars', '--user-data-dir=' + profile,
    '--remote-debugging-pipe', 'about:blank'],
    { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
  const pending = new Map(), events = [];
  let lastId = 0, buffer = '';
  chrome.stdio[4].on('data', (chunk) => {
    buffer += chunk.toString();
    for (let end; (end = buffer.indexOf('\0')) >= 0; buffer = buffer.slice(end + 1)) {
      const message = JSON.parse(buffer.slice(0, end));
      if (pending.has(message.id)) pending.get(message.id)(message);
      else if (message.method) events.push(message);
    }
  });
  const send = (method, params, sessionId) => new Promise((resolve) => {
    const message = { id: ++lastId, method, params, sessionId };
    pending.set(message.id, resolve);
    chrome.stdio[3].write(JSON.stringify(message) + '\0');
  });

  async function open(page, width = 1100, height = 900) {
    const { result: { targetId } } = await send('Target.createTarget', { url: 'about:blank' });
    const { result: { sessionId } } = await send('Target.attachToTarget', { targetId, flatten: true });
    await send('Runtime.enable', {}, sessionId);
    await send('Page.enable', {}, sessionId);
    await send('Emulation.setDeviceMetricsOverride',
               { width, height, deviceScaleFactor: 1, mobile: false }, sessionId);
    await send('Page.navigate', { url: 'file://' + page }, sessionId);
    while (!events.some((e) => e.method === 'Page.loadEventFired')) await sleep(50);
    const evaluate = async (expression) =>
      (await send('Runtime.evaluate', { expression, returnByValue: true }, sessionId)).result.result.value;
    return {
      evaluate,
      // The centre of the first element matching `selector`, scrolled into view.
      async centre(selector) {
        return evaluate(`(() => {
          const e = document.querySelector(${JSON.stringify(selector)});
          if (!e) return null;
          e.scrollIntoView({ block: 'center' });
          const r = e.getBoundingClientRect();
          return [r.x + r.width / 2, r.y + r.height / 2];
        })()`);
      },
      async hover([x, y]) {
        await send('Input.dispatchMouseEvent', { type: 'mouseMoved', x, y }, sessionId);
        await sleep(150);
      },
      async click([x, y]) {
        await send('Input.dispatchMouseEvent', { type: 'mouseMoved', x, y }, sessionId);
        for (const type of ['mousePressed', 'mouseReleased'])
          await send('Input.dispatchMouseEvent', { type, x, y, button: 'left', clickCount: 1 }, sessionId);
        await sleep(150);
      },
      async screenshot(path) {
        const { result } = await send('Page.captureScreenshot',
                                      { format: 'png', captureBeyondViewport: true }, sessionId);
        fs.writeFileSync(path, Buffer.from(result.data, 'base64'));
      },
    };
  }

  const errors = () => events.filter((e) => e.method === 'Runtime.exceptionThrown' ||
    (e.method === 'Runtime.consoleAPICalled' && ['error', 'warning'].includes(e.params.type)) ||
    (e.method === 'Log.entryAdded' && ['error', 'warning'].includes(e.params.entry.level)));
  return { open, errors, close: () => chrome.kill() };
}

// Runs `test(browser, check)`; check(ok, what) prints ok/FAIL lines. Exits 1 on any failure or
// after 60 s.
function run(profile, test) {
  const browser = launch(profile);
  let failed = false;
  const check = (ok, what) => {
    console.log((ok ? 'ok: ' : 'FAIL: ') + what);
    if (!ok) failed = true;
  };
  const timer = setTimeout(() => {
    check(false, 'Chromium did not answer within 60 s');
    browser.close();
    process.exit(1);
  }, 60000);
  test(browser, check).catch((e) => check(false, 'the test threw: ' + e.stack)).finally(() => {
    clearTimeout(timer);
    browser.close();
    process.exit(failed ? 1 : 0);
  });
}

module.exports = { run };
