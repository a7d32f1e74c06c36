// Part of browser_test.sh: on the walkthrough page, moves the mouse over the heatmap cell
// Write -> a and checks that the tooltip shows its numbers and that no script error or console
// error/warning occurred. Usage: node browser_hover.js PAGE PROFILE
const { run } = require('./devtools.js');
const [page, profile] = process.argv.slice(2);

run(profile, async (browser, check) => {
  const p = await browser.open(page);
  await p.hover(await p.centre('.cell[data-query="Write"][data-key="a"]'));
  const tip = await p.evaluate(`(() => { const t = document.getElementById('tip');
    return t.style.display === 'block' ? t.textContent : ''; })()`);
  check(browser.errors().length === 0, 'no script error: ' + JSON.stringify(browser.errors()));
  // The hovered cell's exact numbers: Q·K^T = 0.0648..., weight 40.11...% (Write -> a).
  check(/^Write → a\nQ·K\^T = 0\.0648\d*\nscaled = 0\.0458\d*\nweight = 40\.11\d*%$/.test(tip),
        'hovering the cell Write -> a shows its numbers: ' + JSON.stringify(tip));
});
