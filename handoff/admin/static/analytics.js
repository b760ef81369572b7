/*
 * Neuvonta admin analytics: volume, the AI resolution rate, handoff reasons, the time to a
 * person's first reply and the knowledge gaps of the chosen period
 * (GET /api/admin/analytics, admins only; the gaps also as CSV). Charts come from
 * /admin/charts.js, always with the same figures in a table. Every text is set with
 * textContent: the gap questions are residents' own words.
 */
(function () {
  'use strict';

  var N = window.Neuvonta;
  var C = window.NeuvontaCharts;
  var node = N.node;
  var STORE_KEY = 'neuvonta.admin';

  var T = {
    fi: {
      pageTitle: 'Tunnusluvut – Neuvonta ylläpito',
      skip: 'Siirry sisältöön',
      app: 'Neuvonta · ylläpito',
      title: 'Palvelun tunnusluvut',
      navLabel: 'Ylläpito',
      thresholdsLink: 'Tekoälyn vastausrajat',
      loading: 'Ladataan…',
      loadFailed: 'Tietojen haku epäonnistui. Yritä hetken päästä uudelleen.',
      signInTitle: 'Kirjaudu sisään',
      signInNeeded: 'Tämä sivu on ylläpitäjille. Kirjaudu ensin asiakaspalvelun työpöydällä ylläpitäjän tunnuksella ja palaa sitten tälle sivulle.',
      adminsOnly: 'Vain ylläpitäjät voivat nähdä tunnusluvut. Kirjaudu ylläpitäjän tunnuksella.',
      signInLink: 'Kirjaudu asiakaspalvelun työpöydällä',
      days: 'Aikaväli',
      d7: 'Viimeiset 7 päivää',
      d30: 'Viimeiset 30 päivää',
      d90: 'Viimeiset 90 päivää',
      range: '{since} – {until}: {messages} viestiä.',
      resolutionTitle: 'Tekoäly ratkaisi',
      resolutionText: 'Tekoäly vastasi {answered} viestiin; {resolved} vastauksen jälkeen asia ei siirtynyt ihmiselle. Osuus kaikista {messages} viestistä, jotka tekoäly käsitteli.',
      volumeTitle: 'Viestimäärät',
      volumeChart: 'Viestit jonoittain',
      volumeSummary: 'Eniten viestejä: {top} ({n}). Kaikki luvut ovat taulukossa.',
      colGroup: 'Ryhmä',
      colValue: 'Arvo',
      colMessages: 'Viestejä',
      byChannel: 'Kanava',
      byLanguage: 'Kieli',
      byQueue: 'Jono',
      reasonsTitle: 'Miksi asia siirtyi ihmiselle',
      reasonsChart: 'Siirtojen syyt',
      reasonsSummary: 'Yleisin syy: {top} ({n}). Kaikki luvut ovat taulukossa.',
      colReason: 'Syy',
      colCount: 'Kpl',
      responseTitle: 'Aika ihmisen ensimmäiseen vastaukseen',
      colQueue: 'Jono',
      colTickets: 'Tapauksia',
      colAnswered: 'Vastattu',
      colMedian: 'Mediaani',
      colP90: '90 % nopeammin kuin',
      allQueues: 'Kaikki jonot',
      minutes: '{n} min',
      labelsTitle: 'Henkilöstön arviot tekoälystä',
      labelsText: '{n} tiketissä on arvio siitä, osuiko tekoäly oikeaan.',
      colJudged: 'Arvio',
      colJudgedCount: 'Arvioitu',
      colRight: 'Oikein',
      colShareRight: 'Osuus oikein',
      labelDepartment: 'Osasto oikein',
      labelAnswer: 'Vastaus oikein',
      gapsTitle: 'Tietoaukot',
      gapsIntro: 'Asukkaiden kysymyksiä, joihin tietopankista ei löytynyt hyvää vastausta (siirretty ihmiselle epävarmuuden tai vastauksen puutteen vuoksi, tai pyydetty tarkennusta), samankaltaiset yhdessä. Suurimmat ryhmät ensin.',
      gapsCsv: 'Lataa kaikki CSV-tiedostona',
      colExample: 'Kysymys',
      colLanguage: 'Kieli',
      colWordings: 'Muita sanamuotoja',
      colLast: 'Viimeksi',
      gapsEmpty: 'Ei tietoaukkoja valitulla aikavälillä.',
      noData: 'Ei viestejä valitulla aikavälillä.',
      none: '–',
      reason_low_confidence: 'Tekoäly ei ollut varma',
      reason_no_answer: 'Vastausta ei löytynyt',
      reason_asked_for_human: 'Asukas pyysi ihmistä',
      reason_urgent: 'Kiireellinen',
      reason_personal_case: 'Henkilökohtainen asia',
      reason_ai_error: 'Tekoälyn virhe',
      reason_ai_timeout: 'Tekoäly ei vastannut ajoissa',
      reason_max_turns: 'Liian monta vastausta',
      reason_queue_rule: 'Jonossa aina ihminen',
      channel_web: 'Verkkochat',
      channel_sms: 'Tekstiviesti',
      channel_email: 'Sähköposti',
      lang_fi: 'suomi',
      lang_sv: 'ruotsi',
      lang_en: 'englanti',
      lang_und: 'tuntematon'
    },
    sv: {
      pageTitle: 'Nyckeltal – Neuvonta administration',
      skip: 'Hoppa till innehållet',
      app: 'Neuvonta · administration',
      title: 'Tjänstens nyckeltal',
      navLabel: 'Administration',
      thresholdsLink: 'AI:ns svarsgränser',
      loading: 'Laddar…',
      loadFailed: 'Uppgifterna kunde inte hämtas. Försök igen om en stund.',
      signInTitle: 'Logga in',
      signInNeeded: 'Den här sidan är för administratörer. Logga först in i kundtjänstens arbetsvy med ett administratörskonto och återvänd sedan hit.',
      adminsOnly: 'Endast administratörer kan se nyckeltalen. Logga in med ett administratörskonto.',
      signInLink: 'Logga in i kundtjänstens arbetsvy',
      days: 'Tidsperiod',
      d7: 'Senaste 7 dagarna',
      d30: 'Senaste 30 dagarna',
      d90: 'Senaste 90 dagarna',
      range: '{since} – {until}: {messages} meddelanden.',
      resolutionTitle: 'AI:n löste',
      resolutionText: 'AI:n besvarade {answered} meddelanden; efter {resolved} svar gick ärendet inte till en människa. Andel av alla {messages} meddelanden som AI:n behandlade.',
      volumeTitle: 'Meddelandevolymer',
      volumeChart: 'Meddelanden per kö',
      volumeSummary: 'Flest meddelanden: {top} ({n}). Alla siffror finns i tabellen.',
      colGroup: 'Grupp',
      colValue: 'Värde',
      colMessages: 'Meddelanden',
      byChannel: 'Kanal',
      byLanguage: 'Språk',
      byQueue: 'Kö',
      reasonsTitle: 'Varför ärendet gick till en människa',
      reasonsChart: 'Orsaker till överföring',
      reasonsSummary: 'Vanligaste orsak: {top} ({n}). Alla siffror finns i tabellen.',
      colReason: 'Orsak',
      colCount: 'Antal',
      responseTitle: 'Tid till en människas första svar',
      colQueue: 'Kö',
      colTickets: 'Ärenden',
      colAnswered: 'Besvarade',
      colMedian: 'Median',
      colP90: '90 % snabbare än',
      allQueues: 'Alla köer',
      minutes: '{n} min',
      labelsTitle: 'Personalens bedömning av AI:n',
      labelsText: '{n} ärenden har en bedömning av om AI:n hade rätt.',
      colJudged: 'Bedömning',
      colJudgedCount: 'Bedömda',
      colRight: 'Rätt',
      colShareRight: 'Andel rätt',
      labelDepartment: 'Rätt avdelning',
      labelAnswer: 'Rätt svar',
      gapsTitle: 'Kunskapsluckor',
      gapsIntro: 'Invånarnas frågor som kunskapsbanken inte hade något bra svar på (överförda till en människa på grund av osäkerhet eller saknat svar, eller ombedda att precisera), liknande tillsammans. Största grupperna först.',
      gapsCsv: 'Ladda ner alla som CSV-fil',
      colExample: 'Fråga',
      colLanguage: 'Språk',
      colWordings: 'Andra formuleringar',
      colLast: 'Senast',
      gapsEmpty: 'Inga kunskapsluckor under vald period.',
      noData: 'Inga meddelanden under vald period.',
      none: '–',
      reason_low_confidence: 'AI:n var osäker',
      reason_no_answer: 'Inget svar hittades',
      reason_asked_for_human: 'Invånaren bad om en människa',
      reason_urgent: 'Brådskande',
      reason_personal_case: 'Personligt ärende',
      reason_ai_error: 'Fel i AI:n',
      reason_ai_timeout: 'AI:n svarade inte i tid',
      reason_max_turns: 'För många svar',
      reason_queue_rule: 'Alltid en människa i kön',
      channel_web: 'Webbchatt',
      channel_sms: 'SMS',
      channel_email: 'E-post',
      lang_fi: 'finska',
      lang_sv: 'svenska',
      lang_en: 'engelska',
      lang_und: 'okänt'
    },
    en: {
      pageTitle: 'Service figures – Neuvonta admin',
      skip: 'Skip to content',
      app: 'Neuvonta · admin',
      title: 'Service figures',
      navLabel: 'Admin',
      thresholdsLink: 'AI answer thresholds',
      loading: 'Loading…',
      loadFailed: 'Could not load the data. Try again in a moment.',
      signInTitle: 'Sign in',
      signInNeeded: 'This page is for admins. Sign in to the agent console with an admin account first, then come back to this page.',
      adminsOnly: 'Only admins can see the service figures. Sign in with an admin account.',
      signInLink: 'Sign in to the agent console',
      days: 'Period',
      d7: 'Last 7 days',
      d30: 'Last 30 days',
      d90: 'Last 90 days',
      range: '{since} – {until}: {messages} messages.',
      resolutionTitle: 'Resolved by the AI',
      resolutionText: 'The AI answered {answered} messages; after {resolved} of those answers the case did not go to a person. Share of all {messages} messages the AI handled.',
      volumeTitle: 'Message volume',
      volumeChart: 'Messages by queue',
      volumeSummary: 'Most messages: {top} ({n}). Every figure is in the table.',
      colGroup: 'Group',
      colValue: 'Value',
      colMessages: 'Messages',
      byChannel: 'Channel',
      byLanguage: 'Language',
      byQueue: 'Queue',
      reasonsTitle: 'Why cases went to a person',
      reasonsChart: 'Handoff reasons',
      reasonsSummary: 'Most common reason: {top} ({n}). Every figure is in the table.',
      colReason: 'Reason',
      colCount: 'Count',
      responseTitle: 'Time to a person’s first reply',
      colQueue: 'Queue',
      colTickets: 'Cases',
      colAnswered: 'Replied to',
      colMedian: 'Median',
      colP90: '90 % faster than',
      allQueues: 'All queues',
      minutes: '{n} min',
      labelsTitle: 'Staff verdicts on the AI',
      labelsText: '{n} tickets have a verdict on whether the AI was right.',
      colJudged: 'Verdict',
      colJudgedCount: 'Judged',
      colRight: 'Right',
      colShareRight: 'Share right',
      labelDepartment: 'Right department',
      labelAnswer: 'Right answer',
      gapsTitle: 'Knowledge gaps',
      gapsIntro: 'Residents’ questions the knowledge base had no good answer for (handed to a person for low confidence or no answer, or asked to say more), similar ones together. Biggest groups first.',
      gapsCsv: 'Download all as a CSV file',
      colExample: 'Question',
      colLanguage: 'Language',
      colWordings: 'Other wordings',
      colLast: 'Last asked',
      gapsEmpty: 'No knowledge gaps in the chosen period.',
      noData: 'No messages in the chosen period.',
      none: '–',
      reason_low_confidence: 'The AI was unsure',
      reason_no_answer: 'No answer found',
      reason_asked_for_human: 'The resident asked for a person',
      reason_urgent: 'Urgent',
      reason_personal_case: 'Personal case',
      reason_ai_error: 'AI error',
      reason_ai_timeout: 'The AI did not answer in time',
      reason_max_turns: 'Too many answers',
      reason_queue_rule: 'Always a person in that queue',
      channel_web: 'Web chat',
      channel_sms: 'SMS',
      channel_email: 'Email',
      lang_fi: 'Finnish',
      lang_sv: 'Swedish',
      lang_en: 'English',
      lang_und: 'unknown'
    }
  };

  var state = { lang: 'fi', data: null, queues: [], denied: 0, status: 'loading' };
  var el = {};
  var t = N.translator(T, function () {
    return state.lang;
  });

  function named(prefix, key) {
    var text = t(prefix + key);
    return text === undefined ? key : text;
  }

  function queueLabel(name) {
    for (var i = 0; i < state.queues.length; i++) {
      var q = state.queues[i];
      if (q.name === name) return (q.label && (q.label[state.lang] || q.label.fi)) || q.name;
    }
    return name;
  }

  function fmt(v, opts) {
    if (v == null) return t('none');
    return new Intl.NumberFormat(N.locale(state.lang), opts).format(v);
  }

  function date(iso) {
    try {
      return new Intl.DateTimeFormat(N.locale(state.lang), { dateStyle: 'medium' }).format(new Date(iso));
    } catch (e) {
      return String(iso);
    }
  }

  function minutes(v) {
    return v == null ? t('none') : t('minutes', { n: fmt(v, { maximumFractionDigits: 1 }) });
  }

  function clear(body) {
    while (body.firstChild) body.removeChild(body.firstChild);
  }

  function row(body, texts, header) {
    var tr = node('tr');
    texts.forEach(function (text, i) {
      var c = node(i === 0 && header ? 'th' : 'td', i > 0 && typeof text === 'number' ? 'num' : null, typeof text === 'number' ? fmt(text) : text);
      if (i === 0 && header) c.scope = 'row';
      tr.appendChild(c);
    });
    body.appendChild(tr);
    return tr;
  }

  function entries(obj) {
    return Object.keys(obj).map(function (k) {
      return [k, obj[k]];
    });
  }

  function renderVolume(v) {
    clear(el.volumeRows);
    [['byChannel', v.by_channel, function (k) { return named('channel_', k); }],
     ['byLanguage', v.by_language, function (k) { return named('lang_', k); }],
     ['byQueue', v.by_queue, queueLabel]].forEach(function (group) {
      entries(group[1]).forEach(function (kv) {
        row(el.volumeRows, [t(group[0]), group[2](kv[0]), kv[1]], true);
      });
    });
    var items = entries(v.by_queue).map(function (kv) { return { label: queueLabel(kv[0]), value: kv[1] }; });
    bars(el.volumeChart, items, 'volumeChart', 'volumeSummary');
  }

  function bars(container, items, title, summary) {
    if (!items.length) {
      clear(container);
      return;
    }
    C.barChart(container, {
      title: t(title),
      summary: t(summary, { top: items[0].label, n: fmt(items[0].value) }),
      items: items,
      format: function (n) { return fmt(n); }
    });
  }

  function renderReasons(reasons) {
    clear(el.reasonsRows);
    var items = entries(reasons).map(function (kv) { return { label: named('reason_', kv[0]), value: kv[1] }; });
    items.forEach(function (it) {
      row(el.reasonsRows, [it.label, it.value], true);
    });
    bars(el.reasonsChart, items, 'reasonsChart', 'reasonsSummary');
  }

  function renderResponse(fr) {
    clear(el.responseRows);
    function line(label, r) {
      return row(el.responseRows, [label, r.tickets, r.answered, minutes(r.median_minutes), minutes(r.p90_minutes)], true);
    }
    entries(fr.by_queue).forEach(function (kv) {
      line(queueLabel(kv[0]), kv[1]).setAttribute('data-queue', kv[0]);
    });
    line(t('allQueues'), fr.overall).className = 'total';
  }

  function renderLabels(l) {
    clear(el.labelsRows);
    el.labelsText.textContent = t('labelsText', { n: fmt(l.labelled) });
    var pct = function (v) { return fmt(v, { style: 'percent', maximumFractionDigits: 0 }); };
    row(el.labelsRows, [t('labelDepartment'), l.department_judged, l.department_right, pct(l.department_rate)], true);
    row(el.labelsRows, [t('labelAnswer'), l.answer_judged, l.answer_right, pct(l.answer_rate)], true);
  }

  function renderGaps(groups) {
    clear(el.gapsRows);
    groups.forEach(function (g) {
      var tr = node('tr');
      var th = node('th', null, g.example);
      th.scope = 'row';
      tr.appendChild(th);
      tr.appendChild(node('td', null, named('lang_', g.language)));
      tr.appendChild(node('td', 'num', fmt(g.count)));
      var td = node('td');
      var others = g.examples.filter(function (e) { return e !== g.example; });
      if (others.length) {
        var ul = node('ul', 'gap-examples');
        others.forEach(function (e) { ul.appendChild(node('li', null, e)); });
        td.appendChild(ul);
      }
      tr.appendChild(td);
      tr.appendChild(node('td', null, date(g.last_asked)));
      el.gapsRows.appendChild(tr);
    });
    el.gapsEmpty.hidden = groups.length > 0;
  }

  function render() {
    el.signedOut.hidden = !state.denied;
    el.view.hidden = !!state.denied || !state.data;
    if (state.denied) el.signedOutText.textContent = t(state.denied === 403 ? 'adminsOnly' : 'signInNeeded');
    el.status.textContent = state.status ? t(state.status) : '';
    if (state.status === 'loadFailed') el.status.setAttribute('data-kind', 'error');
    else el.status.removeAttribute('data-kind');
    var d = state.data;
    if (!d) return;
    el.range.textContent = t('range', { since: date(d.since), until: date(d.until), messages: fmt(d.volume.messages) });
    el.rate.textContent = d.resolution.rate == null ? t('noData') : fmt(d.resolution.rate, { style: 'percent', maximumFractionDigits: 0 });
    el.rateText.textContent = t('resolutionText', { answered: fmt(d.resolution.answered), resolved: fmt(d.resolution.resolved), messages: fmt(d.resolution.messages) });
    renderVolume(d.volume);
    renderReasons(d.handoff_reasons);
    renderResponse(d.first_response);
    renderLabels(d.labels);
    renderGaps(d.knowledge_gaps);
    el.csv.href = '/api/admin/knowledge-gaps.csv?days=' + encodeURIComponent(String(d.days));
  }

  function request(path) {
    return N.requestStatus('GET', path);
  }

  function load() {
    state.status = 'loading';
    render();
    var queues = state.queues.length ? Promise.resolve(null) : request('/api/queues');
    return Promise.all([request('/api/admin/analytics?days=' + encodeURIComponent(el.days.value)), queues])
      .then(function (rs) {
        var r = rs[0];
        if (r.status === 401 || r.status === 403) {
          state.denied = r.status;
          state.status = null;
          return render();
        }
        if (r.status !== 200) throw new Error('analytics ' + r.status);
        if (rs[1] && rs[1].status === 200) state.queues = rs[1].data;
        state.denied = 0;
        state.data = r.data;
        state.status = null;
        render();
      })
      .catch(function () {
        state.status = 'loadFailed';
        render();
      });
  }

  function applyLanguage(lang, remember) {
    state.lang = N.supported(lang) ? lang : 'fi';
    N.applyTexts(state.lang, t);
    if (remember) N.saveStore(STORE_KEY, { language: state.lang });
    render();
  }

  function start() {
    var ids = {
      signedOut: 'signed-out', signedOutText: 'signed-out-text', days: 'days', range: 'range',
      status: 'page-status', rate: 'resolution-rate', rateText: 'resolution-text',
      volumeChart: 'volume-chart', volumeRows: 'volume-rows', reasonsChart: 'reasons-chart',
      reasonsRows: 'reasons-rows', responseRows: 'response-rows', gapsRows: 'gaps-rows',
      gapsEmpty: 'gaps-empty', csv: 'gaps-csv', view: 'analytics-view', labelsRows: 'labels-rows',
      labelsText: 'labels-text'
    };
    Object.keys(ids).forEach(function (key) {
      el[key] = document.getElementById(ids[key]);
    });
    el.days.addEventListener('change', load);
    N.onLanguageSwitch(function (lang) {
      applyLanguage(lang, true);
    });
    applyLanguage(N.startLanguage(N.loadStore(STORE_KEY).language), false);
    load();
  }

  N.ready(start);
})();
