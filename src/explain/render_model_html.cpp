// The model view page: the map's JSON (render_json) embedded in the page, and a small script that
// draws the thumbnails, the head view, the word table and the rollout from it. One file, no
// network.
#include <string>

#include "format.hpp"
#include "qkv/explain/render_html.hpp"
#include "qkv/explain/render_json.hpp"

namespace qkv::explain {
namespace {

constexpr const char* style = R"css(
:root { --ink: #1d2330; --muted: #5b6475; --line: #e3e7ee; --accent: #2166ac; --bg: #f5f7fa;
        --thumb: 72px; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { background: linear-gradient(120deg, #173f6d, #2166ac); color: #fff; padding: 22px 0 18px; }
header h1 { margin: 0 0 4px; font-size: 24px; font-weight: 650; }
header p { margin: 2px 0; opacity: .92; overflow-wrap: anywhere; }
.wrap { max-width: 1040px; margin: 0 auto; padding: 0 20px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; margin: 18px 0;
          padding: 16px 20px; overflow-x: auto; }
section h2 { margin: 0 0 6px; font-size: 18px; }
section p { margin: 4px 0 12px; color: var(--muted); }
#grid { display: grid; gap: 6px; align-items: center; justify-content: start; }
.col-label, .row-label { font-size: 13px; color: var(--muted); white-space: nowrap; }
.col-label { text-align: center; }
.row-label { padding-right: 6px; text-align: right; }
canvas.thumb { width: var(--thumb); height: var(--thumb); image-rendering: pixelated;
               border: 2px solid var(--line); border-radius: 4px; cursor: pointer; }
canvas.thumb:hover { border-color: #f4a261; }
canvas.thumb.selected { border-color: var(--accent); box-shadow: 0 0 0 2px #9ecae1; }
.head-body { display: flex; align-items: flex-start; gap: 0; margin: 8px 0 4px; }
.tokens { display: flex; flex-direction: column; }
.token { height: 24px; line-height: 24px; padding: 0 8px; border-radius: 4px; white-space: pre;
         font-family: ui-monospace, Menlo, monospace; font-size: 14px; }
.tokens.queries .token { text-align: right; cursor: default; }
.tokens.queries .token:hover, .token.active { background: #fde6cf; }
.token .w { color: var(--muted); font-size: 12px; margin-left: 8px; }
#lines { flex: none; }
#row-weights { min-height: 1.5em; font-family: ui-monospace, Menlo, monospace; font-size: 14px;
               color: var(--ink); overflow-wrap: anywhere; }
table.heat { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 6px 0 10px; }
.heat th { font-weight: 600; color: var(--muted); font-size: 13px; padding: 2px 6px;
           white-space: pre; font-family: ui-monospace, Menlo, monospace; }
.heat thead th { vertical-align: bottom; }
.heat td { text-align: center; font-size: 12px; padding: 0; border: 1px solid #fff; }
.heat td.masked { background: #eceef1; color: #9aa3b2; }
table.list { border-collapse: collapse; margin: 6px 0; }
.list th, .list td { padding: 3px 12px 3px 0; text-align: left; border-bottom: 1px solid var(--line);
                     font-family: ui-monospace, Menlo, monospace; font-size: 14px; white-space: pre; }
.list thead th { font-family: inherit; color: var(--muted); font-weight: 600; }
.rule { font-size: 14px; }
footer { color: var(--muted); font-size: 13px; padding: 4px 0 30px; }
)css";

// Draws the page from the embedded data. Every weight shown comes from the data as it is; the
// script computes nothing but colours and layout.
constexpr const char* script = R"js(
(function () {
  const data = JSON.parse(document.getElementById('attention-data').textContent);
  const label = (t) => t.replace(/ /g, '\u2423').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
  const tokens = data.tokens.map(label);
  const words = (data.words || []).map((w) => label(w.text));
  const T = tokens.length;
  const percent = (w) => (100 * w).toFixed(1) + '%';
  const heat = (w) => {
    const t = Math.max(0, Math.min(1, w));
    const mix = (to) => Math.round(255 + t * (to - 255));
    return 'rgb(' + mix(33) + ', ' + mix(102) + ', ' + mix(172) + ')';
  };
  const ink = (w) => (w > 0.55 ? '#ffffff' : '#1d2330');
  function el(tag, attributes, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attributes || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const hidden = (head, i, j) => (head.steps ? head.steps.masked[i][j] : data.causal && j > i);
  const name = (head) => 'Layer ' + head.layer + ', head ' + head.head;

  // A weight matrix as a table of coloured cells; the numbers printed when the cells are wide
  // enough to read them, always in each cell's tooltip.
  function heatTable(rows, cols, weights, masked) {
    const table = el('table', { class: 'heat' });
    const size = Math.max(14, Math.min(44, Math.floor(880 / (cols.length + 2))));
    const numbers = size >= 40;
    const head = el('tr', {}), corner = el('th', {});
    head.append(corner);
    cols.forEach((c) => head.append(el('th', {}, c)));
    const thead = el('thead', {});
    thead.append(head);
    table.append(thead);
    const body = el('tbody', {});
    rows.forEach((r, i) => {
      const tr = el('tr', {});
      tr.append(el('th', { style: 'text-align: right' }, r));
      cols.forEach((c, j) => {
        const w = weights[i][j], off = masked && masked(i, j);
        const td = el('td', {
          title: r + ' \u2192 ' + c + ': ' + (off ? 'hidden by the causal mask' : w.toFixed(4)),
          style: 'width: ' + size + 'px; height: ' + Math.min(size, 30) + 'px;' +
                 (off ? '' : ' background: ' + heat(w) + '; color: ' + ink(w)),
        }, numbers ? (off ? '\u00d7' : w.toFixed(2)) : '');
        if (off) td.className = 'masked';
        tr.append(td);
      });
      body.append(tr);
    });
    table.append(body);
    return table;
  }

  // Each query's most attended key, with its weight, from the data's list.
  function mostAttended(rows, list) {
    const table = el('table', { class: 'list' });
    const head = el('tr', {});
    ['query', 'most attended', 'weight'].forEach((h) => head.append(el('th', {}, h)));
    const thead = el('thead', {});
    thead.append(head);
    table.append(thead);
    const body = el('tbody', {});
    list.forEach((m) => {
      const tr = el('tr', {});
      [rows[m.query], rows[m.key], m.weight.toFixed(2)].forEach((v) => tr.append(el('td', {}, v)));
      body.append(tr);
    });
    table.append(body);
    return table;
  }

  // The model view: one thumbnail per layer x head.
  const layers = [...new Set(data.heads.map((h) => h.layer))];
  const columns = [...new Set(data.heads.map((h) => h.head))].sort((a, b) => a - b);
  const grid = document.getElementById('grid');
  const thumb = Math.max(40, Math.min(96, Math.floor(880 / columns.length) - 10));
  document.documentElement.style.setProperty('--thumb', thumb + 'px');
  grid.style.gridTemplateColumns = 'auto repeat(' + columns.length + ', var(--thumb))';
  grid.append(el('div', {}));
  columns.forEach((h) => grid.append(el('div', { class: 'col-label' }, 'head ' + h)));
  const thumbs = [];
  layers.forEach((l) => {
    grid.append(el('div', { class: 'row-label' }, 'layer ' + l));
    columns.forEach((h) => {
      const head = data.heads.find((x) => x.layer === l && x.head === h);
      if (!head) { grid.append(el('div', {})); return; }
      const k = Math.max(1, Math.ceil(thumb / T));
      const canvas = el('canvas', { class: 'thumb', width: T * k, height: T * k,
                                    'data-layer': l, 'data-head': h,
                                    title: name(head) + ': click to open' });
      const g = canvas.getContext('2d');
      for (let i = 0; i < T; ++i)
        for (let j = 0; j < T; ++j) {
          g.fillStyle = hidden(head, i, j) ? '#eceef1' : heat(head.weights[i][j]);
          g.fillRect(j * k, i * k, k, k);
        }
      canvas.addEventListener('click', () => {
        open(head);
        document.getElementById('head-view').scrollIntoView({ block: 'start' });
      });
      thumbs.push(canvas);
      grid.append(canvas);
    });
  });

  // The head view: queries on the left, keys on the right, a line per pair as strong as its
  // weight; hovering a query shows its row of weights.
  const rowHeight = 24, lineWidth = 160;
  function open(head) {
    thumbs.forEach((t) => t.classList.toggle('selected',
      Number(t.dataset.layer) === head.layer && Number(t.dataset.head) === head.head));
    document.getElementById('head-title').textContent = 'Head view: ' + name(head);
    const queries = document.getElementById('queries'), keys = document.getElementById('keys');
    const svg = document.getElementById('lines');
    const row = document.getElementById('row-weights');
    svg.setAttribute('width', lineWidth);
    svg.setAttribute('height', T * rowHeight);
    queries.replaceChildren(...tokens.map((t, i) =>
      el('div', { class: 'token query', 'data-index': i }, t)));
    keys.replaceChildren(...tokens.map((t, j) => {
      const k = el('div', { class: 'token key', 'data-index': j }, t);
      k.append(el('span', { class: 'w' }));
      return k;
    }));
    function draw(only) {
      svg.replaceChildren();
      for (let i = 0; i < T; ++i) {
        if (only !== null && i !== only) continue;
        for (let j = 0; j < T; ++j) {
          const w = head.weights[i][j];
          if (hidden(head, i, j) || w < 0.01) continue;
          const line = document.createElementNS('http://www.w3.org/2000/svg', 'line');
          line.setAttribute('x1', 4);
          line.setAttribute('y1', rowHeight * i + rowHeight / 2);
          line.setAttribute('x2', lineWidth - 4);
          line.setAttribute('y2', rowHeight * j + rowHeight / 2);
          line.setAttribute('stroke', '#2166ac');
          line.setAttribute('stroke-width', 2.5);
          line.setAttribute('stroke-opacity', only === null ? w * 0.7 : Math.max(w, 0.08));
          svg.append(line);
        }
      }
    }
    function clear() {
      draw(null);
      queries.querySelectorAll('.token').forEach((q) => q.classList.remove('active'));
      keys.querySelectorAll('.token').forEach((k) => {
        k.style.background = '';
        k.style.color = '';
        k.querySelector('.w').textContent = '';
      });
      row.textContent = 'Hover a query token (left) to see its row of weights.';
    }
    queries.querySelectorAll('.token').forEach((q) => {
      const i = Number(q.dataset.index);
      q.addEventListener('mouseenter', () => {
        clear();
        q.classList.add('active');
        draw(i);
        const shown = [];
        keys.querySelectorAll('.token').forEach((k) => {
          const j = Number(k.dataset.index), w = head.weights[i][j];
          if (hidden(head, i, j)) {
            k.querySelector('.w').textContent = '\u00d7';
            return;
          }
          k.style.background = heat(w);
          k.style.color = ink(w);
          k.querySelector('.w').textContent = percent(w);
          shown.push(tokens[j] + ' ' + percent(w));
        });
        row.textContent = tokens[i] + ' \u2192 ' + shown.join(', ');
      });
      q.addEventListener('mouseleave', clear);
    });
    clear();
    const table = document.getElementById('head-table');
    table.replaceChildren(heatTable(tokens, tokens, head.weights, (i, j) => hidden(head, i, j)));
    const summary = document.getElementById('head-summary');
    if (words.length) {
      summary.replaceChildren(el('h3', {}, 'Word table: ' + name(head)),
        heatTable(words, words, head.word_weights),
        mostAttended(words, head.word_most_attended));
    } else {
      summary.replaceChildren(el('h3', {}, 'Most attended token: ' + name(head)),
        mostAttended(tokens, head.most_attended));
    }
  }

  if (data.rollout) {
    const parts = [heatTable(tokens, tokens, data.rollout.weights)];
    if (words.length)
      parts.push(el('h3', {}, 'Between words'), heatTable(words, words, data.rollout.word_weights));
    else
      parts.push(mostAttended(tokens, data.rollout.most_attended));
    document.getElementById('rollout-table').replaceChildren(...parts);
  } else {
    document.getElementById('rollout').hidden = true;
  }
  open(data.heads[0]);
  document.body.dataset.ready = 'true';
})();
)js";

}  // namespace

std::string render_model_html(const attention_map& map) {
  std::string data = render_json(map);
  // Inside <script>, "</" could close the element: JSON reads "<\/" as the same "</".
  for (size_t at = data.find("</"); at != std::string::npos; at = data.find("</", at + 3))
    data.insert(at + 1, 1, '\\');  // not insert(at, "\\"): GCC 12 warns falsely (-Wrestrict)
  std::string counts = detail::count_of(static_cast<int64_t>(map.tokens.size()), "token");
  if (!map.words.empty())
    counts += " · " + detail::count_of(static_cast<int64_t>(map.words.size()), "word");
  counts += " · the model: " + detail::count_of(map.model_layers, "layer") + " × " +
            detail::count_of(map.model_heads, "head") + (map.causal ? " · causal" : "");
  std::string page =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>qkv explain: attention, layer by layer and head by head</title>\n<style>";
  page += style;
  page +=
      "</style>\n</head>\n<body>\n<header><div class=\"wrap\"><h1>Attention, layer by layer "
      "and head by head</h1>\n<p>" +
      detail::escape_xml(map.title) + "</p>\n<p>" + counts +
      "</p></div></header>\n<main class=\"wrap\">\n"
      "<section id=\"model-view\"><h2>Model view</h2>\n<p>Every layer (rows) and head "
      "(columns) as a thumbnail of its weights: row i, column j is how much token i attends "
      "to token j (white 0, deep blue 1). Click one to open it below.</p>\n"
      "<div id=\"grid\"></div></section>\n"
      "<section id=\"head-view\"><h2 id=\"head-title\">Head view</h2>\n"
      "<p>Queries on the left, keys on the right; each line is as strong as the weight the "
      "query gives the key.</p>\n<div id=\"row-weights\"></div>\n"
      "<div class=\"head-body\"><div id=\"queries\" class=\"tokens queries\"></div>"
      "<svg id=\"lines\" xmlns=\"http://www.w3.org/2000/svg\"></svg>"
      "<div id=\"keys\" class=\"tokens keys\"></div></div>\n"
      "<div id=\"head-table\"></div>\n<div id=\"head-summary\"></div>\n";
  if (!map.words.empty()) page += "<p class=\"rule\">" + detail::escape_xml(word_rule) + "</p>\n";
  page += "</section>\n<section id=\"rollout\"><h2>Attention rollout</h2>\n<p class=\"rule\">" +
          detail::escape_xml(rollout_rule) +
          "</p>\n<div id=\"rollout-table\"></div></section>\n</main>\n"
          "<footer class=\"wrap\">Computed by qkv's reference attention kernel (float64). The "
          "page's data is the output of <code>qkv explain --format json</code>.</footer>\n"
          "<script type=\"application/json\" id=\"attention-data\">" +
          data + "</script>\n<script>";
  page += script;
  page += "</script>\n</body>\n</html>\n";
  return page;
}

}  // namespace qkv::explain
