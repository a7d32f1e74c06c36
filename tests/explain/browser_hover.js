// Part of browser_test.sh: drives headless Chromium over the DevTools protocol
// (--remote-debugging-pipe: fds 3 and 4, NUL-separated JSON; no npm packages), moves the mouse
// over the heatmap cell Write -> a of the page and checks that the tooltip shows its numbers and
// that no script error or console error/warning occurred. Usage: node browser_hover.js PAGE PROFILE
const { spawn } = require('child_process');
const [page, profile] = process.argv.slice(2);
const chrome = spawn('chromium', ['--headless', '--no-sandbox', '--disable-gpu',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--user-data-dir=' + profile, '--remote-debugging-pipe', 'about:blank'],
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
function send(method, params, sessionId) {
  return new Promise((resolve) => {
    const message = { id: ++lastId, method, params, sessionId };
    pending.set(message.id, resolve);
    chrome.stdio[3].write(JSON.stringify(message) + '\0');
  });
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
function finish(ok, what) {
  console.log((ok ? 'ok: ' : 'FAIL: ') + what);
  chrome.kill();
  process.exit(ok ? 0 : 1);
}
setTimeout(() => finish(false, 'Chromium did not answer within 60 s'), 60000);

(async () => {
  const { result: { targetId } } = await send('Target.createTarget', { url: 'about:blank' });
  const { result: { sessionId } } = await send('Target.attachToTarget', { targetId, flatten: true });
  const evaluate = async (expression) =>
    (await send('Runtime.evaluate', { expression, returnByValue: true }, sessionId)).result.result.value;
  await send('Runtime.enable', {}, sessionId);
  await send('Page.enable', {}, sessionId);
  await send('Page.navigate', { url: 'file://' + page }, sessionId);
  while (!events.some((e) => e.method === 'Page.loadEventFired')) await sleep(50);
  const [x, y] = await evaluate(`(() => {
    const cell = document.querySelector('.cell[data-query="Write"][data-key="a"]');
    cell.scrollIntoView({ block: 'center' });
    const r = cell.getBoundingClientRect();
    return [r.x + r.width / 2, r.y + r.height / 2];
  })()`);
  await send('Input.dispatchMouseEvent', { type: 'mouseMoved', x, y }, sessionId);
  await sleep(200);
  const tip = await evaluate(`(() => { const t = document.getElementById('tip');
    return t.style.display === 'block' ? t.textContent : ''; })()`);
  const errors = events.filter((e) => e.method === 'Runtime.exceptionThrown' ||
    (e.method === 'Runtime.consoleAPICalled' && ['error', 'warning'].includes(e.params.type)));
  if (errors.length) finish(false, 'script errors: ' + JSON.stringify(errors));
  // The hovered cell's exact numbers: Q·K^T = 0.0648..., weight 40.11...% (Write -> a).
  finish(/^Write → a\nQ·K\^T = 0\.0648\d*\nscaled = 0\.0458\d*\nweight = 40\.11\d*%$/.test(tip),
         'hovering the cell Write -> a shows its numbers: ' + JSON.stringify(tip));
})();
