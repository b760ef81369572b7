/*
 * Neuvonta admin charts: small inline SVG charts drawn with createElementNS, no library.
 * Exposed as window.NeuvontaCharts. Every text is set with textContent. A chart is an
 * image (role="img") named by its title and described by a one-sentence summary the page
 * passes (the summary is a description, not part of the name, so it never matches a form
 * label); the page always shows the same figures in a table next to it.
 */
(function () {
  'use strict';

  var SVG = 'http://www.w3.org/2000/svg';
  var uid = 0;

  function el(tag, attrs, text) {
    var n = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      n.setAttribute(k, String(attrs[k]));
    });
    if (text != null) n.textContent = String(text);
    return n;
  }

  function frame(container, width, height, title, summary) {
    while (container.firstChild) container.removeChild(container.firstChild);
    uid += 1;
    var svg = el('svg', {
      viewBox: '0 0 ' + width + ' ' + height,
      width: '100%',
      role: 'img',
      'aria-labelledby': 'chart-title-' + uid,
      'aria-describedby': 'chart-desc-' + uid,
      class: 'chart'
    });
    svg.appendChild(el('title', { id: 'chart-title-' + uid }, title));
    svg.appendChild(el('desc', { id: 'chart-desc-' + uid }, summary));
    container.appendChild(svg);
    return svg;
  }

  /* Lines over x in 0–1 and y in 0–1. series: [{name, points: [[x, y|null]], kind}] (kind
   * names a CSS class: chart-line--<kind>); marker: an x to mark with a vertical line and
   * markerLabel; xLabel under the axis. */
  function lineChart(container, opts) {
    var W = 640, H = 300, L = 48, R = 16, T = 16, B = 64;
    var svg = frame(container, W, H, opts.title, opts.summary);
    var x = function (v) { return L + v * (W - L - R); };
    var y = function (v) { return T + (1 - v) * (H - T - B); };
    var axis = el('g', { class: 'chart-axis', 'aria-hidden': 'true' });
    for (var i = 0; i <= 4; i++) {
      var v = i / 4;
      axis.appendChild(el('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'chart-grid' }));
      axis.appendChild(el('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, opts.percent(v)));
      axis.appendChild(el('text', { x: x(v), y: H - B + 18, 'text-anchor': 'middle' }, opts.number(v)));
    }
    axis.appendChild(el('text', { x: (L + W - R) / 2, y: H - B + 36, 'text-anchor': 'middle' }, opts.xLabel));
    svg.appendChild(axis);

    var legend = el('g', { class: 'chart-legend', 'aria-hidden': 'true' });
    opts.series.forEach(function (s, n) {
      var d = '';
      var pen = false;
      s.points.forEach(function (p) {
        if (p[1] == null) {
          pen = false;
          return;
        }
        d += (pen ? ' L ' : ' M ') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1);
        pen = true;
      });
      if (d) svg.appendChild(el('path', { d: d, class: 'chart-line chart-line--' + s.kind, fill: 'none' }));
      var lx = L + n * 200;
      legend.appendChild(el('line', { x1: lx, x2: lx + 24, y1: H - 10, y2: H - 10, class: 'chart-line chart-line--' + s.kind }));
      legend.appendChild(el('text', { x: lx + 30, y: H - 6 }, s.name));
    });
    if (opts.marker != null) {
      svg.appendChild(el('line', { x1: x(opts.marker), x2: x(opts.marker), y1: T, y2: H - B, class: 'chart-marker' }));
      legend.appendChild(el('line', { x1: L + 400, x2: L + 424, y1: H - 10, y2: H - 10, class: 'chart-marker' }));
      legend.appendChild(el('text', { x: L + 430, y: H - 6 }, opts.markerLabel));
    }
    svg.appendChild(legend);
  }

  /* Horizontal bars. items: [{label, value}], largest value fills the width. */
  function barChart(container, opts) {
    var items = opts.items;
    var row = 28, L = 200, R = 56, W = 640;
    var H = Math.max(1, items.length) * row + 8;
    var svg = frame(container, W, H, opts.title, opts.summary);
    var max = items.reduce(function (m, it) { return Math.max(m, it.value); }, 0) || 1;
    var g = el('g', { 'aria-hidden': 'true' });
    items.forEach(function (it, i) {
      var top = 4 + i * row;
      var w = (it.value / max) * (W - L - R);
      g.appendChild(el('text', { x: L - 8, y: top + 18, 'text-anchor': 'end', class: 'chart-label' }, it.label));
      g.appendChild(el('rect', { x: L, y: top + 4, width: Math.max(w, 1).toFixed(1), height: row - 10, class: 'chart-bar' }));
      g.appendChild(el('text', { x: L + w + 6, y: top + 18, class: 'chart-value' }, opts.format(it.value)));
    });
    svg.appendChild(g);
  }

  window.NeuvontaCharts = { lineChart: lineChart, barChart: barChart };
})();
