/*
 * Neuvonta admin what-if panel: what the thresholds in the form would have done to the
 * messages of the last days, before they are saved (GET /api/admin/whatif).
 *
 * Reads the thresholds form that admin.js fills (the default, the per-queue inputs and
 * the always-to-a-person boxes), asks the server on every change (debounced) and shows a
 * chart (window.NeuvontaCharts) with the same figures as tables. admin.js sends
 * "neuvonta:rendered" on the form after each render (load, save, language). Texts use
 * data-wi18n (data-i18n belongs to admin.js) and textContent only.
 */
(function () {
  'use strict';

  var N = window.Neuvonta;
  var C = window.NeuvontaCharts;
  var node = N.node;

  var T = {
    fi: {
      title: 'Mitä jos?',
      intro: 'Näet ennen tallennusta, mitä lomakkeen rajat olisivat tehneet valitun ajan viesteille: kuinka suuren osan tekoäly olisi vastannut itse, kuinka usein vastaus olisi ollut oikein ja montako tapausta päivässä kuhunkin jonoon olisi tullut.',
      days: 'Aikaväli',
      d7: 'Viimeiset 7 päivää',
      d30: 'Viimeiset 30 päivää',
      d90: 'Viimeiset 90 päivää',
      loading: 'Lasketaan…',
      invalid: 'Korjaa lomakkeen arvot (luku 0–1), niin laskelma päivittyy.',
      failed: 'Laskelma epäonnistui. Yritä hetken päästä uudelleen.',
      noMessages: 'Valitulla aikavälillä ei ole viestejä, joista laskea.',
      summary: 'Ehdotetuilla rajoilla tekoäly vastaisi {share} viesteistä (nyt {now}); ihmisille tulisi {tickets} tapausta päivässä (nyt {ticketsNow}). {messages} viestiä, {days} päivää.',
      precision: 'Arvioitu osuvuus: {value} ({n} arvioitua vastausta, lähde: {source}).',
      precisionFew: 'Osuvuutta ei voi vielä arvioida luotettavasti: vain {n} arvioitua vastausta (lähde: {source}); tarvitaan vähintään 10.',
      precisionNone: 'Osuvuutta ei voi arvioida: ei yhtään arvioitua vastausta. Merkitse tiketteihin, osuiko tekoäly oikeaan.',
      srcLabels: 'henkilöstön merkinnät tiketeissä',
      srcEval: 'testikysymykset',
      chartTitle: 'Tekoälyn vastausosuus ja osuvuus eri rajoilla',
      chartSummary: 'Oletusrajalla {at} tekoäly vastaisi {share} viesteistä, osuvuus {precision}. Luvut ovat taulukossa kaavion alla.',
      chartX: 'oletusraja (jonokohtaiset rajat ennallaan)',
      seriesShare: 'vastausosuus',
      seriesPrecision: 'osuvuus',
      marker: 'ehdotettu {at}',
      tableCaption: 'Jonoittain: nyt → ehdotus',
      colQueue: 'Jono',
      colThreshold: 'Raja',
      colShare: 'Tekoäly vastaisi',
      colTickets: 'Tapauksia päivässä',
      total: 'Kaikki jonot',
      always: 'aina ihmiselle',
      curveShow: 'Kaavion luvut taulukkona',
      colDefault: 'Oletusraja',
      colPrecision: 'Osuvuus',
      colSamples: 'Arvioituja vastauksia',
      none: '–'
    },
    sv: {
      title: 'Vad händer om?',
      intro: 'Innan du sparar ser du vad gränserna i formuläret skulle ha gjort med meddelandena under vald tid: hur stor del AI:n skulle ha besvarat själv, hur ofta svaret skulle ha varit rätt och hur många ärenden per dag varje kö skulle ha fått.',
      days: 'Tidsperiod',
      d7: 'Senaste 7 dagarna',
      d30: 'Senaste 30 dagarna',
      d90: 'Senaste 90 dagarna',
      loading: 'Räknar…',
      invalid: 'Rätta värdena i formuläret (ett tal 0–1) så uppdateras kalkylen.',
      failed: 'Kalkylen misslyckades. Försök igen om en stund.',
      noMessages: 'Det finns inga meddelanden att räkna på under vald period.',
      summary: 'Med de föreslagna gränserna skulle AI:n besvara {share} av meddelandena (nu {now}); människor skulle få {tickets} ärenden per dag (nu {ticketsNow}). {messages} meddelanden, {days} dagar.',
      precision: 'Uppskattad träffsäkerhet: {value} ({n} bedömda svar, källa: {source}).',
      precisionFew: 'Träffsäkerheten kan ännu inte uppskattas tillförlitligt: bara {n} bedömda svar (källa: {source}); minst 10 behövs.',
      precisionNone: 'Träffsäkerheten kan inte uppskattas: inga bedömda svar. Markera i ärendena om AI:n hade rätt.',
      srcLabels: 'personalens markeringar i ärenden',
      srcEval: 'testfrågor',
      chartTitle: 'AI:ns svarsandel och träffsäkerhet vid olika gränser',
      chartSummary: 'Med standardgränsen {at} skulle AI:n besvara {share} av meddelandena, träffsäkerhet {precision}. Siffrorna finns i tabellen under diagrammet.',
      chartX: 'standardgräns (köspecifika gränser oförändrade)',
      seriesShare: 'svarsandel',
      seriesPrecision: 'träffsäkerhet',
      marker: 'föreslagen {at}',
      tableCaption: 'Per kö: nu → förslag',
      colQueue: 'Kö',
      colThreshold: 'Gräns',
      colShare: 'AI:n skulle svara',
      colTickets: 'Ärenden per dag',
      total: 'Alla köer',
      always: 'alltid till en människa',
      curveShow: 'Diagrammets siffror som tabell',
      colDefault: 'Standardgräns',
      colPrecision: 'Träffsäkerhet',
      colSamples: 'Bedömda svar',
      none: '–'
    },
    en: {
      title: 'What if?',
      intro: 'Before you save, see what the thresholds in the form would have done to the messages of the chosen period: how many the AI would have answered on its own, how often its answer would have been right, and how many cases a day each queue would have got.',
      days: 'Period',
      d7: 'Last 7 days',
      d30: 'Last 30 days',
      d90: 'Last 90 days',
      loading: 'Calculating…',
      invalid: 'Correct the values in the form (a number from 0 to 1) to update the figures.',
      failed: 'The calculation failed. Try again in a moment.',
      noMessages: 'There are no messages in the chosen period to calculate from.',
      summary: 'With the proposed thresholds the AI would answer {share} of the messages (now {now}); people would get {tickets} cases a day (now {ticketsNow}). {messages} messages, {days} days.',
      precision: 'Expected precision: {value} ({n} judged answers, source: {source}).',
      precisionFew: 'Not enough data for a reliable precision yet: only {n} judged answers (source: {source}); at least 10 are needed.',
      precisionNone: 'No precision yet: no judged answers. Mark on tickets whether the AI was right.',
      srcLabels: 'staff labels on tickets',
      srcEval: 'test questions',
      chartTitle: 'AI answer share and precision at different thresholds',
      chartSummary: 'At the default threshold {at} the AI would answer {share} of the messages, precision {precision}. The figures are in the table below the chart.',
      chartX: 'default threshold (per-queue thresholds as they are)',
      seriesShare: 'answer share',
      seriesPrecision: 'precision',
      marker: 'proposed {at}',
      tableCaption: 'Per queue: now → proposed',
      colQueue: 'Queue',
      colThreshold: 'Threshold',
      colShare: 'AI would answer',
      colTickets: 'Cases a day',
      total: 'All queues',
      always: 'always to a person',
      curveShow: 'The chart’s figures as a table',
      colDefault: 'Default threshold',
      colPrecision: 'Precision',
      colSamples: 'Judged answers',
      none: '–'
    }
  };

  var el = {};
  // asked: the query of the last request (undefined after a failure); force: ask even so.
  var state = { data: null, status: null, timer: null, seq: 0, asked: undefined, force: false };

  function lang() {
    var l = document.documentElement.lang;
    return N.supported(l) ? l : 'fi';
  }

  var t = N.translator(T, lang);

  function fmt(value, style, digits) {
    if (value == null) return t('none');
    return new Intl.NumberFormat(N.locale(lang()), { style: style, maximumFractionDigits: digits }).format(value);
  }

  function pct(v) {
    return fmt(v, 'percent', 0);
  }

  function num(v) {
    return fmt(v, 'decimal', 2);
  }

  function queueLabel(name) {
    var label = document.getElementById('label-' + name);
    return (label && label.textContent) || name;
  }

  /* The form as a query string, or null when a value is not a number from 0 to 1. */
  function candidateQuery() {
    var params = new URLSearchParams();
    params.set('days', el.days.value);
    function value(input) {
      var raw = input.value.trim().replace(',', '.');
      if (input.validity && input.validity.badInput) return undefined;
      if (raw === '') return '';
      var n = Number(raw);
      return isFinite(n) && n >= 0 && n <= 1 ? String(n) : undefined;
    }
    var d = value(el.defaultInput);
    if (d === undefined || d === '') return null;
    params.set('default', d);
    var inputs = document.querySelectorAll('#queue-rows input[type="number"][data-queue]');
    for (var i = 0; i < inputs.length; i++) {
      var v = value(inputs[i]);
      if (v === undefined) return null;
      params.set('queue.' + inputs[i].getAttribute('data-queue'), v);
    }
    params.append('always_handoff', '');
    var boxes = document.querySelectorAll('#queue-rows input[type="checkbox"][data-queue]');
    for (var j = 0; j < boxes.length; j++) {
      if (boxes[j].checked) params.append('always_handoff', boxes[j].getAttribute('data-queue'));
    }
    return params.toString();
  }

  /* force (true): ask even when the candidate is as last asked (after admin.js renders:
   * a load, a save, a language); an event argument is not true. */
  function schedule(force) {
    if (force === true) state.force = true;
    if (state.timer) clearTimeout(state.timer);
    state.timer = setTimeout(refresh, 250);
  }

  function refresh() {
    state.timer = null;
    if (document.getElementById('admin-view').hidden) return;
    var query = candidateQuery();
    // An edit's input and change events, or typing a note, leave the candidate as it was:
    // the server would replay every message of the period again for the same figures.
    if (!state.force && query === state.asked) return;
    state.force = false;
    state.asked = query;
    if (query === null) {
      state.status = 'invalid';
      render();
      return;
    }
    var seq = ++state.seq;
    state.status = 'loading';
    renderStatus();
    N.requestJson('GET', '/api/admin/whatif?' + query).then(
      function (data) {
        if (seq !== state.seq) return; // a newer question is on its way
        state.data = data;
        state.status = null;
        render();
      },
      function () {
        if (seq !== state.seq) return;
        state.asked = undefined; // the next edit asks again
        state.status = 'failed';
        render();
      }
    );
  }

  function renderStatus() {
    el.status.textContent = state.status ? t(state.status) : '';
    if (state.status === 'failed' || state.status === 'invalid') el.status.setAttribute('data-kind', 'warning');
    else el.status.removeAttribute('data-kind');
  }

  function precisionText(p) {
    var source = p.source === 'eval' ? t('srcEval') : t('srcLabels');
    if (!p.samples) return t('precisionNone');
    if (!p.enough_data) return t('precisionFew', { n: p.samples, source: source });
    return t('precision', { value: pct(p.value), n: p.samples, source: source });
  }

  function cells(tr, texts) {
    texts.forEach(function (text, i) {
      var c = node(i === 0 ? 'th' : 'td', i === 0 ? null : 'num', text);
      if (i === 0) c.scope = 'row';
      tr.appendChild(c);
    });
  }

  function change(before, after) {
    return before === after ? after : before + ' → ' + after;
  }

  function renderTable(d) {
    var body = el.rows;
    while (body.firstChild) body.removeChild(body.firstChild);
    d.queues.forEach(function (q, i) {
      var was = d.queues_now[i];
      var tr = node('tr');
      tr.setAttribute('data-queue', q.queue);
      var rule = function (x) { return x.always_handoff ? t('always') : num(x.threshold); };
      cells(tr, [
        queueLabel(q.queue),
        change(rule(was), rule(q)),
        change(pct(was.answered_share), pct(q.answered_share)),
        change(num(was.tickets_per_day), num(q.tickets_per_day))
      ]);
      body.appendChild(tr);
    });
    var total = node('tr', 'total');
    total.setAttribute('data-queue', '');
    cells(total, [
      t('total'),
      '',
      change(pct(d.now.answered_share), pct(d.outcome.answered_share)),
      change(num(d.now.tickets_per_day), num(d.outcome.tickets_per_day))
    ]);
    body.appendChild(total);
  }

  function renderCurve(d) {
    var body = el.curveRows;
    while (body.firstChild) body.removeChild(body.firstChild);
    d.curve.forEach(function (p) {
      var tr = node('tr');
      cells(tr, [num(p['default']), pct(p.answered_share), pct(p.precision), String(p.precision_samples), num(p.tickets_per_day)]);
      body.appendChild(tr);
    });
    var at = d.candidate['default'];
    C.lineChart(el.chart, {
      title: t('chartTitle'),
      summary: t('chartSummary', { at: num(at), share: pct(d.outcome.answered_share), precision: pct(d.outcome.precision.value) }),
      xLabel: t('chartX'),
      percent: pct,
      number: num,
      marker: at,
      markerLabel: t('marker', { at: num(at) }),
      series: [
        { name: t('seriesShare'), kind: 'share', points: d.curve.map(function (p) { return [p['default'], p.answered_share]; }) },
        { name: t('seriesPrecision'), kind: 'precision', points: d.curve.map(function (p) { return [p['default'], p.precision]; }) }
      ]
    });
  }

  function render() {
    var texts = document.querySelectorAll('[data-wi18n]');
    for (var i = 0; i < texts.length; i++) texts[i].textContent = t(texts[i].getAttribute('data-wi18n'));
    renderStatus();
    var d = state.data;
    el.results.hidden = !d;
    if (!d) return;
    el.summary.textContent = d.outcome.messages
      ? t('summary', {
          share: pct(d.outcome.answered_share),
          now: pct(d.now.answered_share),
          tickets: num(d.outcome.tickets_per_day),
          ticketsNow: num(d.now.tickets_per_day),
          messages: d.outcome.messages,
          days: d.outcome.days
        })
      : t('noMessages');
    el.precision.textContent = precisionText(d.outcome.precision);
    renderTable(d);
    renderCurve(d);
  }

  function start() {
    el.form = document.getElementById('thresholds-form');
    el.defaultInput = document.getElementById('default-threshold');
    el.days = document.getElementById('whatif-days');
    el.status = document.getElementById('whatif-status');
    el.results = document.getElementById('whatif-results');
    el.summary = document.getElementById('whatif-summary');
    el.precision = document.getElementById('whatif-precision');
    el.chart = document.getElementById('whatif-chart');
    el.rows = document.getElementById('whatif-rows');
    el.curveRows = document.getElementById('whatif-curve-rows');
    el.form.addEventListener('input', schedule);
    el.form.addEventListener('change', schedule);
    el.days.addEventListener('change', schedule);
    // After a load or save the form holds new values; after a language switch, new words.
    el.form.addEventListener('neuvonta:rendered', function () {
      render();
      schedule(true);
    });
    render();
  }

  N.ready(start);
})();
