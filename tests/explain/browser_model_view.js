// Part of browser_test.sh: the model view page of a checkpoint or a GPT-2 folder. One thumbnail
// per layer x head; clicking one opens that head in the head view, with its word table when the
// page has words (else its most attended tokens); hovering a query token shows its row of
// weights, as the page's data has them; the rollout is drawn; no script error or console
// message; a screenshot is saved. Then an SVG heatmap: every text inside the canvas.
// Usage: node browser_model_view.js PAGE SVG PROFILE SCREENSHOT
const { run } = require('./devtools.js');
const [page, svg, profile, screenshot] = process.argv.slice(2);

run(profile, async (browser, check) => {
  const p = await browser.open(page);
  check(await p.evaluate(`document.body.dataset.ready === 'true'`), 'the page script ran to the end');
  const data = await p.evaluate(`JSON.parse(document.getElementById('attention-data').textContent)`);
  const L = data.model.layers, H = data.model.heads;
  const thumbs = await p.evaluate(`document.querySelectorAll('canvas.thumb').length`);
  check(thumbs === L * H && L * H > 1, `one thumbnail per layer x head (${L} x ${H}): ${thumbs}`);

  const layer = L - 1, head = H - 1;
  await p.click(await p.centre(`canvas.thumb[data-layer="${layer}"][data-head="${head}"]`));
  const title = await p.evaluate(`document.getElementById('head-title').textContent`);
  check(title === `Head view: Layer ${layer}, head ${head}`, 'clicking a thumbnail opens its head: ' + title);
  check(await p.evaluate(`document.querySelector('canvas.thumb.selected').dataset.layer === '${layer}'`),
        'the opened thumbnail is marked');
  // A checkpoint's page has words: the opened head shows its word table, one row per word.
  const summary = await p.evaluate(`document.getElementById('head-summary').querySelector('h3').textContent`);
  const wordRows = await p.evaluate(`document.querySelectorAll('#head-summary table.heat tbody tr').length`);
  if ((data.words || []).length)
    check(summary.startsWith('Word table') && wordRows === data.words.length,
          `the opened head shows its word table (${wordRows} rows): ` + summary);
  else
    check(summary.startsWith('Most attended token'), 'the opened head shows its most attended tokens: ' + summary);

  const i = Math.min(6, data.tokens.length - 1);
  await p.hover(await p.centre(`#queries .token[data-index="${i}"]`));
  const row = await p.evaluate(`document.getElementById('row-weights').textContent`);
  const weights = data.heads.find((h) => h.layer === layer && h.head === head).weights[i];
  const label = (t) => t.replace(/ /g, '\u2423');
  const expected = label(data.tokens[i]) + ' \u2192 ' + weights.slice(0, i + 1)
    .map((w, j) => label(data.tokens[j]) + ' ' + (100 * w).toFixed(1) + '%').join(', ');
  check(row === expected, 'hovering query ' + i + ' shows its row of weights: ' + JSON.stringify(row));
  const keyText = await p.evaluate(`document.querySelector('#keys .token[data-index="0"] .w').textContent`);
  check(keyText === (100 * weights[0]).toFixed(1) + '%', 'the key column shows the weights: ' + keyText);
  const lines = await p.evaluate(`document.querySelectorAll('#lines line').length`);
  check(lines >= 1 && lines <= i + 1, `only the hovered query's lines are drawn (${lines})`);

  const rollout = await p.evaluate(`document.querySelectorAll('#rollout-table table.heat').length`);
  check(rollout >= 1, 'the rollout view is drawn');
  check(await p.evaluate(`document.documentElement.scrollWidth <= window.innerWidth`),
        'the page does not scroll sideways');
  await p.screenshot(screenshot);
  check(require('fs').statSync(screenshot).size > 0, 'screenshot saved to ' + screenshot);

  const s = await browser.open(svg);
  const overflow = await s.evaluate(`(() => {
    const root = document.querySelector('svg'), width = root.width.baseVal.value;
    return [...root.querySelectorAll('text')].map((t) => {
      const b = t.getBoundingClientRect();
      return b.right > width + 0.5 || b.left < 0 ? t.textContent : null;
    }).filter((t) => t !== null);
  })()`);
  check(overflow.length === 0, 'every text of the SVG is inside its canvas: ' + JSON.stringify(overflow));
  check(browser.errors().length === 0, 'no script error or console message: ' + JSON.stringify(browser.errors()));
});
