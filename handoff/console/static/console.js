/* Neuvonta agent console. No framework, no build step; shared helpers from
 * /static/common.js (window.Neuvonta), loaded before this file.
 *
 * Security: resident text and everything else from the API is put on the page with
 * textContent / createElement only, never as HTML; only http(s) addresses become links.
 * Signing in starts a session held in an HttpOnly cookie; every state-changing request
 * repeats the neuvonta_csrf cookie in the X-CSRF-Token header. A 401 shows the sign-in form.
 */
(function () {
  'use strict';

  var N = window.Neuvonta;
  var ApiError = N.ApiError;
  var node = N.node;

  var STORE_KEY = 'neuvonta.console.v1';
  var PREVIEW_CHARS = 160;

  var T = {
    fi: {
      pageTitle: 'Asiakaspalvelun työpöytä – Neuvonta',
      skipList: 'Siirry tapauslistaan',
      title: 'Asiakaspalvelun työpöytä',
      liveConnecting: 'Yhdistetään…',
      liveOn: 'Päivittyy reaaliajassa',
      liveLost: 'Yhteys katkesi – yhdistetään uudelleen…',
      tickets: 'Tapaukset',
      queue: 'Jono',
      allQueues: 'Kaikki jonot',
      status: 'Tila',
      filterOpen: 'Avoimet',
      filterResolved: 'Ratkaistut',
      filterAll: 'Kaikki',
      count: '{n} tapausta',
      countOne: '1 tapaus',
      countNone: 'Ei tapauksia näillä rajauksilla.',
      loading: 'Ladataan…',
      noTicket: 'Valitse tapaus listasta',
      noTicketHint: 'Avaa tapaus listasta nähdäksesi keskustelun ja vastataksesi asukkaalle.',
      ticketTitle: 'Tapaus {case}',
      urgent: 'Kiireellinen',
      urgentBanner: 'Kiireellinen tapaus: asukas voi olla vaarassa. Asukasta on neuvottu soittamaan hätänumeroon 112.',
      fStatus: 'Tila',
      fQueue: 'Jono',
      fDepartment: 'Palveluluokka',
      fReason: 'Syy',
      fConfidence: 'Tekoälyn varmuus',
      fLanguage: 'Kieli',
      fChannel: 'Kanava',
      fAddress: 'Osoite',
      fCreated: 'Avattu',
      fUpdated: 'Päivitetty',
      fFirstResponse: 'Ensimmäinen vastaus',
      fResolved: 'Ratkaistu',
      resolvedBy: '{when}, {who}',
      webAddress: 'Verkkochatin istunto (tunniste piilotettu)',
      none: '–',
      aiDraft: 'Tekoälyn luonnos',
      noDraft: 'Tekoäly ei tehnyt luonnosta tähän tapaukseen.',
      sources: 'Lähteet',
      transcript: 'Keskustelu',
      replyTitle: 'Vastaa asukkaalle',
      replyLabel: 'Vastauksesi',
      replyHint: 'Vastaus lähetetään asukkaalle samaan kanavaan, josta hän kirjoitti. Ctrl + Enter lähettää.',
      replyClosedHint: 'Tapaus on ratkaistu. Siihen ei voi enää vastata.',
      useDraft: 'Käytä tekoälyn luonnosta',
      sendReply: 'Lähetä vastaus',
      resolve: 'Merkitse ratkaistuksi',
      footer: 'Neuvonta – asiakaspalvelun työpöytä. Käsittele asukkaiden tietoja luottamuksellisesti.',
      newWindow: '(avautuu uuteen välilehteen)',
      roleResident: 'Asukas',
      roleAi: 'Tekoälyavustaja',
      roleAgent: 'Asiakaspalvelija',
      roleSystem: 'Järjestelmän ilmoitus',
      delivery: 'Toimitus: {s}',
      newTicket: 'Uusi tapaus: {case}',
      newUrgentTicket: 'Uusi kiireellinen tapaus: {case}',
      sending: 'Lähetetään vastausta…',
      replySent: 'Vastaus lähetetty asukkaalle.',
      replyStored: 'Vastaus tallennettu. Se lähetetään heti, kun yhteys toimii.',
      replyEmpty: 'Kirjoita vastaus ennen lähettämistä.',
      replyConflict: 'Tapaus on jo ratkaistu, joten siihen ei voi vastata.',
      resolving: 'Merkitään ratkaistuksi…',
      resolved: 'Tapaus {case} on merkitty ratkaistuksi.',
      errorPrefix: 'Virhe: ',
      errorLoad: 'Tietojen haku epäonnistui. Yritä uudelleen.',
      errorNotFound: 'Tapausta ei löytynyt.',
      errorAuth: 'Kirjautumisesi on vanhentunut. Kirjaudu uudelleen.',
      errorForbidden: 'Sinulla ei ole oikeutta tämän jonon tapauksiin.',
      errorGeneric: 'Toiminto epäonnistui. Yritä uudelleen.',
      loginTitle: 'Kirjaudu sisään',
      loginHint: 'Kirjaudu asiakaspalvelun käyttäjätunnuksellasi.',
      username: 'Käyttäjätunnus',
      password: 'Salasana',
      signIn: 'Kirjaudu',
      signingIn: 'Kirjaudutaan…',
      loginMissing: 'Kirjoita käyttäjätunnus ja salasana.',
      loginFailed: 'Kirjautuminen epäonnistui. Tarkista käyttäjätunnus ja salasana.',
      loginThrottled: 'Liian monta epäonnistunutta yritystä. Yritä uudelleen {s} sekunnin kuluttua.',
      sessionExpired: 'Kirjautumisesi on vanhentunut. Kirjaudu uudelleen.',
      signedOut: 'Olet kirjautunut ulos.',
      signedInAs: 'Kirjautunut: {name}',
      signOut: 'Kirjaudu ulos',
      adminLink: 'Kynnysarvot',
      st: { open: 'Avoin', resolved: 'Ratkaistu', assigned: 'Työn alla' },
      reasons: {
        asked_for_human: 'Asukas pyysi ihmistä',
        urgent: 'Kiireellinen tilanne',
        personal_case: 'Henkilökohtainen asia',
        low_confidence: 'Tekoäly ei ollut varma',
        no_answer: 'Vastausta ei löytynyt',
        ai_error: 'Tekoälyn virhe',
        ai_timeout: 'Tekoäly ei vastannut ajoissa',
        max_turns: 'Liian monta kierrosta',
        queue_rule: 'Jonosääntö',
        delivery_failed: 'Vastausta ei saatu perille'
      },
      channels: { web: 'Verkkochat', sms: 'Tekstiviesti', whatsapp: 'WhatsApp', telegram: 'Telegram', email: 'Sähköposti' },
      languages: { fi: 'suomi', sv: 'ruotsi', en: 'englanti' },
      deliveries: { delivered: 'toimitettu', pending: 'odottaa', sent: 'lähetetty', failed: 'epäonnistui' }
    },
    sv: {
      pageTitle: 'Kundtjänstens arbetsvy – Neuvonta',
      skipList: 'Gå till ärendelistan',
      title: 'Kundtjänstens arbetsvy',
      liveConnecting: 'Ansluter…',
      liveOn: 'Uppdateras i realtid',
      liveLost: 'Anslutningen bröts – ansluter igen…',
      tickets: 'Ärenden',
      queue: 'Kö',
      allQueues: 'Alla köer',
      status: 'Status',
      filterOpen: 'Öppna',
      filterResolved: 'Lösta',
      filterAll: 'Alla',
      count: '{n} ärenden',
      countOne: '1 ärende',
      countNone: 'Inga ärenden med dessa filter.',
      loading: 'Laddar…',
      noTicket: 'Välj ett ärende i listan',
      noTicketHint: 'Öppna ett ärende i listan för att se konversationen och svara invånaren.',
      ticketTitle: 'Ärende {case}',
      urgent: 'Brådskande',
      urgentBanner: 'Brådskande ärende: invånaren kan vara i fara. Invånaren har uppmanats att ringa nödnumret 112.',
      fStatus: 'Status',
      fQueue: 'Kö',
      fDepartment: 'Tjänsteklass',
      fReason: 'Orsak',
      fConfidence: 'AI:s säkerhet',
      fLanguage: 'Språk',
      fChannel: 'Kanal',
      fAddress: 'Adress',
      fCreated: 'Öppnat',
      fUpdated: 'Uppdaterat',
      fFirstResponse: 'Första svar',
      fResolved: 'Löst',
      resolvedBy: '{when}, {who}',
      webAddress: 'Webbchattsession (identifieraren dold)',
      none: '–',
      aiDraft: 'AI:s utkast',
      noDraft: 'AI:n gjorde inget utkast för det här ärendet.',
      sources: 'Källor',
      transcript: 'Konversation',
      replyTitle: 'Svara invånaren',
      replyLabel: 'Ditt svar',
      replyHint: 'Svaret skickas till invånaren i samma kanal som hen skrev i. Ctrl + Enter skickar.',
      replyClosedHint: 'Ärendet är löst. Det går inte längre att svara.',
      useDraft: 'Använd AI:s utkast',
      sendReply: 'Skicka svar',
      resolve: 'Markera som löst',
      footer: 'Neuvonta – kundtjänstens arbetsvy. Behandla invånarnas uppgifter konfidentiellt.',
      newWindow: '(öppnas i en ny flik)',
      roleResident: 'Invånare',
      roleAi: 'AI-assistent',
      roleAgent: 'Kundtjänst',
      roleSystem: 'Systemmeddelande',
      delivery: 'Leverans: {s}',
      newTicket: 'Nytt ärende: {case}',
      newUrgentTicket: 'Nytt brådskande ärende: {case}',
      sending: 'Skickar svaret…',
      replySent: 'Svaret har skickats till invånaren.',
      replyStored: 'Svaret har sparats. Det skickas så snart förbindelsen fungerar.',
      replyEmpty: 'Skriv ett svar innan du skickar.',
      replyConflict: 'Ärendet är redan löst, så det går inte att svara.',
      resolving: 'Markerar som löst…',
      resolved: 'Ärendet {case} har markerats som löst.',
      errorPrefix: 'Fel: ',
      errorLoad: 'Uppgifterna kunde inte hämtas. Försök igen.',
      errorNotFound: 'Ärendet hittades inte.',
      errorAuth: 'Din inloggning har gått ut. Logga in igen.',
      errorForbidden: 'Du har inte behörighet till ärendena i den här kön.',
      errorGeneric: 'Åtgärden misslyckades. Försök igen.',
      loginTitle: 'Logga in',
      loginHint: 'Logga in med ditt användarnamn för kundtjänsten.',
      username: 'Användarnamn',
      password: 'Lösenord',
      signIn: 'Logga in',
      signingIn: 'Loggar in…',
      loginMissing: 'Skriv ditt användarnamn och lösenord.',
      loginFailed: 'Inloggningen misslyckades. Kontrollera användarnamn och lösenord.',
      loginThrottled: 'För många misslyckade försök. Försök igen om {s} sekunder.',
      sessionExpired: 'Din inloggning har gått ut. Logga in igen.',
      signedOut: 'Du har loggat ut.',
      signedInAs: 'Inloggad: {name}',
      signOut: 'Logga ut',
      adminLink: 'Tröskelvärden',
      st: { open: 'Öppet', resolved: 'Löst', assigned: 'Under arbete' },
      reasons: {
        asked_for_human: 'Invånaren bad om en människa',
        urgent: 'Brådskande situation',
        personal_case: 'Personligt ärende',
        low_confidence: 'AI:n var osäker',
        no_answer: 'Inget svar hittades',
        ai_error: 'AI-fel',
        ai_timeout: 'AI:n svarade inte i tid',
        max_turns: 'För många omgångar',
        queue_rule: 'Köregel',
        delivery_failed: 'Svaret kom inte fram'
      },
      channels: { web: 'Webbchatt', sms: 'SMS', whatsapp: 'WhatsApp', telegram: 'Telegram', email: 'E-post' },
      languages: { fi: 'finska', sv: 'svenska', en: 'engelska' },
      deliveries: { delivered: 'levererat', pending: 'väntar', sent: 'skickat', failed: 'misslyckades' }
    },
    en: {
      pageTitle: 'Agent console – Neuvonta',
      skipList: 'Skip to the ticket list',
      title: 'Agent console',
      liveConnecting: 'Connecting…',
      liveOn: 'Live updates on',
      liveLost: 'Connection lost – reconnecting…',
      tickets: 'Tickets',
      queue: 'Queue',
      allQueues: 'All queues',
      status: 'Status',
      filterOpen: 'Open',
      filterResolved: 'Resolved',
      filterAll: 'All',
      count: '{n} tickets',
      countOne: '1 ticket',
      countNone: 'No tickets with these filters.',
      loading: 'Loading…',
      noTicket: 'Choose a ticket from the list',
      noTicketHint: 'Open a ticket from the list to see the conversation and reply to the resident.',
      ticketTitle: 'Ticket {case}',
      urgent: 'Urgent',
      urgentBanner: 'Urgent ticket: the resident may be in danger. The resident has been told to call the emergency number 112.',
      fStatus: 'Status',
      fQueue: 'Queue',
      fDepartment: 'Service class',
      fReason: 'Reason',
      fConfidence: 'AI confidence',
      fLanguage: 'Language',
      fChannel: 'Channel',
      fAddress: 'Address',
      fCreated: 'Opened',
      fUpdated: 'Updated',
      fFirstResponse: 'First response',
      fResolved: 'Resolved',
      resolvedBy: '{when}, {who}',
      webAddress: 'Web chat session (identifier hidden)',
      none: '–',
      aiDraft: 'AI draft',
      noDraft: 'The AI made no draft for this ticket.',
      sources: 'Sources',
      transcript: 'Conversation',
      replyTitle: 'Reply to the resident',
      replyLabel: 'Your reply',
      replyHint: 'The reply goes to the resident on the channel they wrote from. Ctrl + Enter sends.',
      replyClosedHint: 'The ticket is resolved. It can no longer be replied to.',
      useDraft: 'Use AI draft',
      sendReply: 'Send reply',
      resolve: 'Resolve',
      footer: 'Neuvonta – agent console. Treat residents’ information as confidential.',
      newWindow: '(opens in a new tab)',
      roleResident: 'Resident',
      roleAi: 'AI assistant',
      roleAgent: 'Service agent',
      roleSystem: 'System notice',
      delivery: 'Delivery: {s}',
      newTicket: 'New ticket: {case}',
      newUrgentTicket: 'New urgent ticket: {case}',
      sending: 'Sending the reply…',
      replySent: 'Reply sent to the resident.',
      replyStored: 'Reply saved. It will be sent as soon as the connection works.',
      replyEmpty: 'Write a reply before sending.',
      replyConflict: 'The ticket is already resolved, so it cannot be replied to.',
      resolving: 'Resolving…',
      resolved: 'Ticket {case} is resolved.',
      errorPrefix: 'Error: ',
      errorLoad: 'Could not load the data. Please try again.',
      errorNotFound: 'The ticket was not found.',
      errorAuth: 'Your sign-in has expired. Please sign in again.',
      errorForbidden: 'You do not have access to the tickets of this queue.',
      errorGeneric: 'The action failed. Please try again.',
      loginTitle: 'Sign in',
      loginHint: 'Sign in with your customer service username.',
      username: 'Username',
      password: 'Password',
      signIn: 'Sign in',
      signingIn: 'Signing in…',
      loginMissing: 'Enter your username and password.',
      loginFailed: 'Sign-in failed. Check your username and password.',
      loginThrottled: 'Too many failed attempts. Try again in {s} seconds.',
      sessionExpired: 'Your sign-in has expired. Please sign in again.',
      signedOut: 'You have signed out.',
      signedInAs: 'Signed in as {name}',
      signOut: 'Sign out',
      adminLink: 'Thresholds',
      st: { open: 'Open', resolved: 'Resolved', assigned: 'In progress' },
      reasons: {
        asked_for_human: 'Resident asked for a person',
        urgent: 'Urgent situation',
        personal_case: 'Personal case',
        low_confidence: 'AI was not confident',
        no_answer: 'No answer found',
        ai_error: 'AI error',
        ai_timeout: 'AI timed out',
        max_turns: 'Too many turns',
        queue_rule: 'Queue rule',
        delivery_failed: 'The reply could not be delivered'
      },
      channels: { web: 'Web chat', sms: 'SMS', whatsapp: 'WhatsApp', telegram: 'Telegram', email: 'Email' },
      languages: { fi: 'Finnish', sv: 'Swedish', en: 'English' },
      deliveries: { delivered: 'delivered', pending: 'pending', sent: 'sent', failed: 'failed' }
    }
  };

  /* The ticket lifecycle's texts (claim, notes, transfer, timeline, labels). */
  var MORE = {
    fi: {
      filterActive: 'Kesken olevat',
      saving: 'Tallennetaan…',
      conflict: 'Toiminto ei sovi tapauksen nykyiseen tilaan (esimerkiksi toinen käsittelijä on ottanut sen). Näkymä on päivitetty.',
      filterClaimed: 'Työn alla',
      filterWaiting: 'Odottavat asukasta',
      search: 'Haku',
      searchHint: 'Asianumero tai sana viesteistä',
      onlyLegend: 'Näytä vain',
      onlyUrgent: 'Vain kiireelliset',
      onlyOverdue: 'Vain myöhässä olevat',
      onlyMine: 'Vain omat',
      overdueCount: 'Myöhässä: {n} (ensimmäinen vastaus tavoiteajan jälkeen)',
      overdueNone: 'Ei myöhässä olevia tapauksia.',
      overdue: 'Myöhässä',
      ownerBadge: 'Käsittelijä: {name}',
      fOwner: 'Käsittelijä',
      fDue: 'Ensimmäinen vastaus viimeistään',
      dueOverdue: '{when} – myöhässä',
      workTitle: 'Käsittely',
      claim: 'Ota käsittelyyn',
      claiming: 'Otetaan käsittelyyn…',
      claimed: 'Tapaus {case} on nyt sinulla.',
      reopen: 'Avaa uudelleen',
      reopening: 'Avataan uudelleen…',
      reopened: 'Tapaus {case} on avattu uudelleen.',
      noteTitle: 'Sisäinen muistiinpano',
      noteLabel: 'Muistiinpano työtovereille',
      noteHint: 'Näkyy vain asiakaspalvelulle, ei koskaan asukkaalle.',
      addNote: 'Tallenna muistiinpano',
      noteEmpty: 'Kirjoita muistiinpano ennen tallentamista.',
      noteSaved: 'Muistiinpano tallennettu.',
      transferTitle: 'Siirrä tapaus',
      transferQueue: 'Siirron kohde',
      transferNote: 'Syy siirtoon (näkyy vain asiakaspalvelulle)',
      transfer: 'Siirrä',
      transferNone: 'Ei muita jonoja, joihin voisit siirtää.',
      transferNoteEmpty: 'Kerro siirron syy uudelle jonolle.',
      transferred: 'Tapaus {case} on siirretty jonoon {queue}.',
      labelTitle: 'Osuiko tekoäly oikeaan?',
      labelDepartment: 'Palveluluokka',
      labelAnswer: 'Vastaus tai luonnos',
      labelUnset: 'Ei arvioitu',
      labelRight: 'Oikein',
      labelWrong: 'Väärin',
      saveLabel: 'Tallenna arvio',
      labelSaved: 'Arvio tallennettu.',
      labelBy: 'Arvioinut {who}, {when}',
      labelNone: 'Ei vielä arvioitu.',
      labelUnavailable: 'Arviointi ei ole vielä käytössä tällä palvelimella.',
      timelineTitle: 'Tapahtumat',
      changeStatus: '{from} → {to}',
      byResident: 'asukas',
      byRouter: 'järjestelmä',
      kinds: {
        opened: 'Tapaus avattiin jonoon {to_queue}',
        claim: 'Otettiin käsittelyyn',
        reply: 'Vastattiin asukkaalle',
        note: 'Sisäinen muistiinpano',
        transfer: 'Siirrettiin jonosta {from_queue} jonoon {to_queue}',
        resolve: 'Merkittiin ratkaistuksi',
        reopen: 'Avattiin uudelleen',
        resident_message: 'Asukas vastasi',
        delivery_failed: 'Vastausta ei saatu perille'
      },
      st: { open: 'Avoin', claimed: 'Työn alla', waiting: 'Odottaa asukasta', resolved: 'Ratkaistu' },
      deliveries: {
        delivered: 'toimitettu',
        pending: 'odottaa lähetystä',
        queued: 'lähetysjonossa',
        sent: 'lähetetty',
        delivered: 'toimitettu',
        read: 'luettu',
        failed: 'epäonnistui',
        undelivered: 'ei toimitettu',
        suppressed: 'ei lähetetty (asukas kieltäytyi viesteistä)'
      },
      fullText: 'Koko viesti',
      attachments: 'Liitteet',
      deliveryError: 'Virhe: {e}'
    },
    sv: {
      filterActive: 'Pågående',
      saving: 'Sparar…',
      conflict: 'Åtgärden passar inte ärendets nuvarande läge (till exempel har en annan handläggare tagit det). Vyn har uppdaterats.',
      filterClaimed: 'Under arbete',
      filterWaiting: 'Väntar på invånaren',
      search: 'Sök',
      searchHint: 'Ärendenummer eller ord i meddelandena',
      onlyLegend: 'Visa bara',
      onlyUrgent: 'Bara brådskande',
      onlyOverdue: 'Bara försenade',
      onlyMine: 'Bara mina',
      overdueCount: 'Försenade: {n} (första svaret efter målet)',
      overdueNone: 'Inga försenade ärenden.',
      overdue: 'Försenat',
      ownerBadge: 'Handläggare: {name}',
      fOwner: 'Handläggare',
      fDue: 'Första svar senast',
      dueOverdue: '{when} – försenat',
      workTitle: 'Handläggning',
      claim: 'Ta ärendet',
      claiming: 'Tar ärendet…',
      claimed: 'Ärendet {case} är nu ditt.',
      reopen: 'Öppna igen',
      reopening: 'Öppnar igen…',
      reopened: 'Ärendet {case} har öppnats igen.',
      noteTitle: 'Intern anteckning',
      noteLabel: 'Anteckning för kollegerna',
      noteHint: 'Syns bara för kundtjänsten, aldrig för invånaren.',
      addNote: 'Spara anteckningen',
      noteEmpty: 'Skriv en anteckning innan du sparar.',
      noteSaved: 'Anteckningen har sparats.',
      transferTitle: 'Flytta ärendet',
      transferQueue: 'Flytta till',
      transferNote: 'Orsak till flytten (syns bara för kundtjänsten)',
      transfer: 'Flytta',
      transferNone: 'Det finns inga andra köer du kan flytta till.',
      transferNoteEmpty: 'Berätta för den nya kön varför ärendet flyttas.',
      transferred: 'Ärendet {case} har flyttats till kön {queue}.',
      labelTitle: 'Hade AI:n rätt?',
      labelDepartment: 'Tjänsteklass',
      labelAnswer: 'Svar eller utkast',
      labelUnset: 'Inte bedömt',
      labelRight: 'Rätt',
      labelWrong: 'Fel',
      saveLabel: 'Spara bedömningen',
      labelSaved: 'Bedömningen har sparats.',
      labelBy: 'Bedömt av {who}, {when}',
      labelNone: 'Inte bedömt ännu.',
      labelUnavailable: 'Bedömningen är inte i bruk på den här servern ännu.',
      timelineTitle: 'Händelser',
      changeStatus: '{from} → {to}',
      byResident: 'invånaren',
      byRouter: 'systemet',
      kinds: {
        opened: 'Ärendet öppnades i kön {to_queue}',
        claim: 'Togs för handläggning',
        reply: 'Invånaren fick svar',
        note: 'Intern anteckning',
        transfer: 'Flyttades från kön {from_queue} till kön {to_queue}',
        resolve: 'Markerades som löst',
        reopen: 'Öppnades igen',
        resident_message: 'Invånaren svarade',
        delivery_failed: 'Svaret kom inte fram'
      },
      st: { open: 'Öppet', claimed: 'Under arbete', waiting: 'Väntar på invånaren', resolved: 'Löst' },
      deliveries: {
        delivered: 'levererat',
        pending: 'väntar på att skickas',
        queued: 'i sändningskön',
        sent: 'skickat',
        delivered: 'levererat',
        read: 'läst',
        failed: 'misslyckades',
        undelivered: 'inte levererat',
        suppressed: 'inte skickat (invånaren har avböjt meddelanden)'
      },
      fullText: 'Hela meddelandet',
      attachments: 'Bilagor',
      deliveryError: 'Fel: {e}'
    },
    en: {
      filterActive: 'In progress',
      saving: 'Saving…',
      conflict: 'That does not fit the ticket’s current state (for example, someone else has claimed it). The view has been updated.',
      filterClaimed: 'Claimed',
      filterWaiting: 'Waiting for the resident',
      search: 'Search',
      searchHint: 'Case number or a word in the messages',
      onlyLegend: 'Show only',
      onlyUrgent: 'Only urgent',
      onlyOverdue: 'Only overdue',
      onlyMine: 'Only mine',
      overdueCount: 'Overdue: {n} (no first response within the target)',
      overdueNone: 'No overdue tickets.',
      overdue: 'Overdue',
      ownerBadge: 'Owner: {name}',
      fOwner: 'Owner',
      fDue: 'First response due',
      dueOverdue: '{when} – overdue',
      workTitle: 'Handling',
      claim: 'Claim',
      claiming: 'Claiming…',
      claimed: 'Ticket {case} is now yours.',
      reopen: 'Reopen',
      reopening: 'Reopening…',
      reopened: 'Ticket {case} has been reopened.',
      noteTitle: 'Internal note',
      noteLabel: 'Note for colleagues',
      noteHint: 'Shown to customer service only, never to the resident.',
      addNote: 'Save note',
      noteEmpty: 'Write a note before saving.',
      noteSaved: 'Note saved.',
      transferTitle: 'Transfer the ticket',
      transferQueue: 'Transfer to',
      transferNote: 'Reason for the transfer (for customer service only)',
      transfer: 'Transfer',
      transferNone: 'There are no other queues you could transfer to.',
      transferNoteEmpty: 'Tell the new queue why the ticket is transferred.',
      transferred: 'Ticket {case} has been transferred to {queue}.',
      labelTitle: 'Was the AI right?',
      labelDepartment: 'Service class',
      labelAnswer: 'Answer or draft',
      labelUnset: 'Not judged',
      labelRight: 'Right',
      labelWrong: 'Wrong',
      saveLabel: 'Save verdict',
      labelSaved: 'Verdict saved.',
      labelBy: 'Judged by {who}, {when}',
      labelNone: 'Not judged yet.',
      labelUnavailable: 'Verdicts are not available on this server yet.',
      timelineTitle: 'Timeline',
      changeStatus: '{from} → {to}',
      byResident: 'resident',
      byRouter: 'system',
      kinds: {
        opened: 'Opened in the queue {to_queue}',
        claim: 'Claimed',
        reply: 'Replied to the resident',
        note: 'Internal note',
        transfer: 'Transferred from {from_queue} to {to_queue}',
        resolve: 'Resolved',
        reopen: 'Reopened',
        resident_message: 'The resident answered',
        delivery_failed: 'The reply could not be delivered'
      },
      st: { open: 'Open', claimed: 'Claimed', waiting: 'Waiting for the resident', resolved: 'Resolved' },
      deliveries: {
        delivered: 'delivered',
        pending: 'waiting to be sent',
        queued: 'queued for sending',
        sent: 'sent',
        delivered: 'delivered',
        read: 'read',
        failed: 'failed',
        undelivered: 'undelivered',
        suppressed: 'not sent (the resident opted out)'
      },
      fullText: 'The whole message',
      attachments: 'Attachments',
      deliveryError: 'Error: {e}'
    }
  };
  Object.keys(MORE).forEach(function (lang) {
    Object.keys(MORE[lang]).forEach(function (key) {
      T[lang][key] = MORE[lang][key];
    });
  });
  var STATUS_FILTERS = ['active', 'open', 'claimed', 'waiting', 'resolved', 'all'];

  var ROLE_KEYS = { resident: 'roleResident', ai: 'roleAi', agent: 'roleAgent', system: 'roleSystem' };

  var state = {
    lang: 'fi',
    queues: [],
    tickets: [],
    known: null, // ticket ids seen in the list, to announce new ones
    openId: null,
    detail: null,
    drafts: new Map(), // ticket id -> reply text being written
    busy: false,
    events: null,
    reopenTimer: null,
    refreshTimer: null,
    listLoading: null,
    listAgain: false,
    live: 'connecting',
    me: null, // the signed-in account: {username, role, queues}
    lastUser: null,
    csrf: '',
    generation: 0, // bumped at each sign-in and sign-out: late answers of the old one are dropped
    loginMessage: null, // {key, values, kind}
    loginBusy: false,
    agesTimer: null,
    overdue: null, // overdue tickets in the caller's queues
    prefill: false, // put the AI draft into the reply when the ticket is first shown
    labelShownFor: null,
    labelUnavailable: false
  };
  var el = {};

  // ---- helpers -----------------------------------------------------------------------

  var t = N.translator(T, function () {
    return state.lang;
  });

  function lookup(group, key) {
    var table = t(group) || {};
    if (key == null || key === '') return t('none');
    return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : String(key);
  }

  function queueLabel(name) {
    for (var i = 0; i < state.queues.length; i++) {
      var q = state.queues[i];
      if (q.name === name) return (q.label && (q.label[state.lang] || q.label.fi)) || q.name;
    }
    return String(name || t('none'));
  }

  function locale() {
    return N.locale(state.lang);
  }

  function formatDate(iso) {
    if (!iso) return t('none');
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    try {
      return new Intl.DateTimeFormat(locale(), { dateStyle: 'short', timeStyle: 'short' }).format(d);
    } catch (e) {
      return d.toLocaleString();
    }
  }

  function formatAge(iso) {
    var d = Date.parse(iso);
    if (isNaN(d)) return '';
    var seconds = Math.round((d - Date.now()) / 1000);
    var abs = Math.abs(seconds);
    var value = seconds;
    var unit = 'second';
    if (abs >= 86400) {
      value = Math.round(seconds / 86400);
      unit = 'day';
    } else if (abs >= 3600) {
      value = Math.round(seconds / 3600);
      unit = 'hour';
    } else if (abs >= 60) {
      value = Math.round(seconds / 60);
      unit = 'minute';
    } else {
      value = 0;
      unit = 'minute';
    }
    try {
      return new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' }).format(value, unit);
    } catch (e) {
      return formatDate(iso);
    }
  }

  function formatPercent(x) {
    if (typeof x !== 'number' || !isFinite(x)) return t('none');
    try {
      return new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 0 }).format(x);
    } catch (e) {
      return Math.round(x * 100) + ' %';
    }
  }

  function sourceList(list, sources) {
    return N.fillSources(list, sources, t('newWindow'));
  }

  function textLang(code) {
    return N.supported(code) ? code : '';
  }

  function preview(text) {
    var s = String(text || '').replace(/\s+/g, ' ').trim();
    return s.length > PREVIEW_CHARS ? s.slice(0, PREVIEW_CHARS - 1) + '…' : s;
  }

  // ---- status ------------------------------------------------------------------------

  function say(text, kind) {
    el.status.setAttribute('data-kind', kind || 'info');
    el.status.textContent = kind === 'error' ? t('errorPrefix') + text : text;
  }

  function announce(text) {
    el.announcer.textContent = text;
  }

  function setLive(mode) {
    state.live = mode;
    el.live.setAttribute('data-state', mode);
    el.liveText.textContent = t(
      mode === 'on' ? 'liveOn' : mode === 'lost' ? 'liveLost' : 'liveConnecting'
    );
  }

  // ---- API ---------------------------------------------------------------------------

  /* A JSON request with the CSRF header on state-changing methods. A 401 outside sign-in
   * shows the sign-in form; a validation error's messages become the error's detail. */
  function api(method, path, body) {
    var headers = {};
    if (method !== 'GET' && method !== 'HEAD') {
      var token = N.csrfToken() || state.csrf;
      if (token) headers['X-CSRF-Token'] = token;
    }
    return N.requestJson(method, path, body, headers).catch(function (err) {
      if (err.status === 401 && path.indexOf('/api/auth/') !== 0 && state.me) {
        showLogin('sessionExpired', 'error');
      }
      var data = err.data;
      if (!err.detail && data && Array.isArray(data.detail)) {
        err.detail = data.detail
          .map(function (d) {
            return d && d.msg ? String(d.msg) : '';
          })
          .filter(Boolean)
          .join('; ');
      }
      throw err;
    });
  }

  function ticketPath(id, suffix) {
    return '/api/tickets/' + encodeURIComponent(id) + (suffix || '');
  }

  function errorText(err) {
    var status = err instanceof ApiError ? err.status : -1;
    if (status === 401) return t('errorAuth');
    if (status === 403) return t('errorForbidden');
    if (status === 404) return t('errorNotFound');
    if (status === 0) return t('errorLoad');
    return (err && err.detail) || t('errorGeneric');
  }

  // ---- queues and list ---------------------------------------------------------------

  function renderQueueOptions() {
    var select = el.queueFilter;
    var current = select.value;
    while (select.options.length > 1) select.remove(1);
    state.queues.forEach(function (q) {
      var opt = document.createElement('option');
      opt.value = q.name;
      opt.textContent = queueLabel(q.name);
      select.appendChild(opt);
    });
    select.value = current;
    if (select.value !== current) select.value = '';
  }

  function loadQueues() {
    var gen = state.generation;
    return api('GET', '/api/queues').then(
      function (queues) {
        if (gen !== state.generation) return;
        state.queues = Array.isArray(queues) ? queues : [];
        renderQueueOptions();
        renderList();
        if (state.detail) renderDetail();
      },
      function (err) {
        if (gen === state.generation) say(errorText(err), 'error');
      }
    );
  }

  function listPath() {
    var params = new URLSearchParams();
    params.set('status', el.statusFilter.value || 'active');
    if (el.queueFilter.value) params.set('queue', el.queueFilter.value);
    if (el.urgentFilter.checked) params.set('urgent', 'true');
    if (el.overdueFilter.checked) params.set('overdue', 'true');
    if (el.mineFilter.checked) params.set('mine', 'true');
    var q = el.searchFilter.value.trim();
    if (q) params.set('q', q);
    return '/api/tickets?' + params.toString();
  }

  /* One list request at a time; a refresh asked for meanwhile runs once after it. */
  function loadList() {
    if (state.listLoading) {
      state.listAgain = true;
      return state.listLoading;
    }
    el.list.setAttribute('aria-busy', 'true');
    var gen = state.generation;
    state.listLoading = api('GET', listPath())
      .then(function (tickets) {
        if (gen !== state.generation) return;
        tickets = Array.isArray(tickets) ? tickets : [];
        announceNew(tickets);
        state.tickets = tickets;
        renderList();
        return loadOverdue();
      })
      .catch(function (err) {
        if (gen === state.generation) say(errorText(err), 'error');
      })
      .then(function () {
        el.list.removeAttribute('aria-busy');
        state.listLoading = null;
        if (state.listAgain) {
          state.listAgain = false;
          return loadList();
        }
        return undefined;
      });
    return state.listLoading;
  }

  /* The overdue count of the caller's queues, whatever the filters show. */
  function loadOverdue() {
    var gen = state.generation;
    return api('GET', '/api/tickets/overdue').then(
      function (res) {
        if (gen !== state.generation) return;
        state.overdue = res && typeof res.total === 'number' ? res.total : null;
        renderOverdue();
      },
      function () {
        /* the list itself is what matters; the next refresh tries again */
      }
    );
  }

  function renderOverdue() {
    var n = state.overdue;
    el.overdueCount.hidden = n === null;
    el.overdueCount.textContent = n ? t('overdueCount', { n: n }) : t('overdueNone');
    el.overdueCount.setAttribute('data-overdue', n ? 'true' : 'false');
  }

  function announceNew(tickets) {
    if (state.known === null) {
      state.known = new Set(tickets.map(function (x) { return x.id; }));
      return;
    }
    var fresh = tickets.filter(function (x) {
      return !state.known.has(x.id) && x.status === 'open';
    });
    tickets.forEach(function (x) {
      state.known.add(x.id);
    });
    if (fresh.length) {
      announce(
        fresh
          .map(function (x) {
            return t(x.urgent ? 'newUrgentTicket' : 'newTicket', { case: x.case_number });
          })
          .join('. ')
      );
    }
  }

  function renderTicketButton(ticket) {
    var button = node(
      'button',
      'ticket' + (ticket.urgent ? ' ticket--urgent' : '') + (ticket.overdue ? ' ticket--overdue' : '')
    );
    button.type = 'button';
    button.setAttribute('data-id', String(ticket.id));
    if (ticket.id === state.openId) button.setAttribute('aria-current', 'true');

    var top = node('span', 'ticket__top');
    top.appendChild(node('span', 'ticket__case', ticket.case_number));
    if (ticket.urgent) {
      var badge = node('span', 'badge badge--urgent');
      badge.appendChild(node('span', 'badge__icon', '!'));
      badge.lastChild.setAttribute('aria-hidden', 'true');
      badge.appendChild(document.createTextNode(' ' + t('urgent')));
      top.appendChild(badge);
    }
    if (ticket.overdue) top.appendChild(node('span', 'badge badge--overdue', t('overdue')));
    if (ticket.status !== 'open') {
      top.appendChild(node('span', 'badge badge--' + (ticket.status === 'resolved' ? 'resolved' : 'other'), lookup('st', ticket.status)));
    }
    if (ticket.owner) top.appendChild(node('span', 'ticket__owner', t('ownerBadge', { name: ticket.owner })));
    button.appendChild(top);

    button.appendChild(
      node('span', 'ticket__meta', queueLabel(ticket.queue) + ' · ' + lookup('reasons', ticket.reason))
    );

    var line = node('span', 'ticket__meta');
    line.appendChild(
      document.createTextNode(
        lookup('languages', ticket.language) + ' · ' + lookup('channels', ticket.channel) + ' · '
      )
    );
    var age = node('time', 'ticket__age', formatAge(ticket.created_at));
    age.dateTime = ticket.created_at;
    line.appendChild(age);
    button.appendChild(line);

    if (ticket.preview) {
      var p = node('span', 'ticket__preview', preview(ticket.preview));
      var lang = textLang(ticket.language);
      if (lang) p.lang = lang;
      button.appendChild(p);
    }
    return button;
  }

  function renderList() {
    var focusedId = null;
    var active = document.activeElement;
    if (active && active.classList && active.classList.contains('ticket') && el.list.contains(active)) {
      focusedId = active.getAttribute('data-id');
    }
    el.list.textContent = '';
    state.tickets.forEach(function (ticket) {
      var li = document.createElement('li');
      li.appendChild(renderTicketButton(ticket));
      el.list.appendChild(li);
    });
    var n = state.tickets.length;
    el.count.textContent = state.known === null ? t('loading') : n === 0 ? t('countNone') : n === 1 ? t('countOne') : t('count', { n: n });
    if (focusedId !== null) {
      var again = el.list.querySelector('.ticket[data-id="' + focusedId + '"]');
      if (again) again.focus();
      else el.listTitle.focus();
    }
  }

  function updateAges() {
    var ages = document.querySelectorAll('time.ticket__age');
    for (var i = 0; i < ages.length; i++) ages[i].textContent = formatAge(ages[i].dateTime);
  }

  // ---- detail ------------------------------------------------------------------------

  function fact(dl, label, value, lang) {
    dl.appendChild(node('dt', null, label));
    var dd = node('dd', null, value);
    if (lang) dd.lang = lang;
    dl.appendChild(dd);
    return dd;
  }

  function addressText(d) {
    var address = String(d.address || '');
    var i = address.indexOf(':');
    var channel = i >= 0 ? address.slice(0, i) : d.channel;
    if (channel === 'web') return t('webAddress');
    return i >= 0 ? address.slice(i + 1) : address || t('none');
  }

  function renderTranscript(messages, lang) {
    el.transcript.textContent = '';
    (Array.isArray(messages) ? messages : []).forEach(function (m) {
      var role = ROLE_KEYS[m.role] ? m.role : 'system';
      var li = node('li', 'tmsg tmsg--' + role);
      var meta = node('p', 'tmsg__meta');
      var who = node('span', 'tmsg__who', t(ROLE_KEYS[role]) + (m.author ? ' (' + m.author + ')' : ''));
      meta.appendChild(who);
      meta.appendChild(document.createTextNode(' · '));
      var time = node('time', null, formatDate(m.created_at));
      time.dateTime = m.created_at;
      meta.appendChild(time);
      if (m.channel) meta.appendChild(document.createTextNode(' · ' + lookup('channels', m.channel)));
      // Replies on provider channels show how far they got; web replies are delivered by storing.
      var outbound = role !== 'resident' && m.status && (role === 'agent' || m.channel !== 'web');
      if (outbound) {
        var delivery = node('span', 'tmsg__delivery', ' · ' + t('delivery', { s: lookup('deliveries', m.status) }));
        delivery.setAttribute('data-status', m.status);
        meta.appendChild(delivery);
      }
      li.appendChild(meta);
      var text = node('p', 'tmsg__text', m.text);
      if (role === 'resident' && lang) text.lang = lang;
      li.appendChild(text);
      if (outbound && m.delivery_error) {
        li.appendChild(node('p', 'tmsg__error', t('deliveryError', { e: m.delivery_error })));
      }
      if (m.full_text && m.full_text !== m.text) {
        var more = node('details', 'tmsg__full');
        more.appendChild(node('summary', null, t('fullText')));
        var full = node('pre', 'tmsg__fulltext', m.full_text);
        if (lang) full.lang = lang;
        more.appendChild(full);
        li.appendChild(more);
      }
      if (Array.isArray(m.attachments) && m.attachments.length) {
        var files = node('ul', 'tmsg__attachments');
        files.setAttribute('aria-label', t('attachments'));
        m.attachments.forEach(function (a) {
          var size = Number(a.size) > 0 ? ' (' + Math.max(1, Math.round(Number(a.size) / 1024)) + ' kB)' : '';
          files.appendChild(node('li', null, String(a.filename || a.content_type || '?') + size));
        });
        li.appendChild(files);
      }
      if (Array.isArray(m.sources) && m.sources.length) {
        var list = node('ul', 'tmsg__sources');
        sourceList(list, m.sources);
        li.appendChild(list);
      }
      el.transcript.appendChild(li);
    });
  }

  function renderDetail() {
    var d = state.detail;
    if (!d) {
      el.detail.hidden = true;
      el.detailHint.hidden = false;
      el.detailTitle.textContent = t('noTicket');
      return;
    }
    var lang = textLang(d.language);
    el.detail.hidden = false;
    el.detailHint.hidden = true;
    el.detailTitle.textContent = t('ticketTitle', { case: d.case_number });

    el.urgentBanner.hidden = !d.urgent;
    el.urgentBanner.textContent = d.urgent ? t('urgentBanner') : '';

    var dl = el.facts;
    dl.textContent = '';
    var statusDd = fact(dl, t('fStatus'), lookup('st', d.status));
    statusDd.id = 'ticket-status';
    statusDd.className = 'fact-status fact-status--' + (d.status === 'resolved' ? 'resolved' : 'open');
    statusDd.setAttribute('data-status', d.status);
    fact(dl, t('fQueue'), queueLabel(d.queue));
    fact(dl, t('fOwner'), d.owner || t('none'));
    fact(dl, t('fReason'), lookup('reasons', d.reason));
    fact(dl, t('fDepartment'), d.department || t('none'));
    fact(dl, t('fConfidence'), formatPercent(d.confidence));
    fact(dl, t('fLanguage'), lookup('languages', d.language));
    fact(dl, t('fChannel'), lookup('channels', d.channel));
    fact(dl, t('fAddress'), addressText(d));
    fact(dl, t('fCreated'), formatDate(d.created_at));
    fact(dl, t('fFirstResponse'), formatDate(d.first_response_at));
    if (d.due_at) {
      var due = fact(dl, t('fDue'), d.overdue ? t('dueOverdue', { when: formatDate(d.due_at) }) : formatDate(d.due_at));
      due.id = 'ticket-due';
      if (d.overdue) due.className = 'fact-overdue';
    }
    if (d.status === 'resolved' || d.resolved_at) {
      fact(
        dl,
        t('fResolved'),
        d.resolved_by ? t('resolvedBy', { when: formatDate(d.resolved_at), who: d.resolved_by }) : formatDate(d.resolved_at)
      );
    }

    if (d.ai_draft) {
      el.draft.textContent = d.ai_draft;
      el.draft.classList.remove('draft--none');
      if (lang) el.draft.lang = lang;
      else el.draft.removeAttribute('lang');
    } else {
      el.draft.textContent = t('noDraft');
      el.draft.classList.add('draft--none');
      el.draft.removeAttribute('lang');
    }
    var hasSources = sourceList(el.sources, d.sources) > 0;
    el.sources.hidden = !hasSources;
    el.sourcesTitle.hidden = !hasSources;

    renderTranscript(d.transcript, lang);

    var closed = d.status === 'resolved';
    var me = state.me ? state.me.username : '';
    // Someone else's claim: only notes (admins may claim it over).
    var othersClaim = d.status === 'claimed' && d.owner && d.owner !== me;
    var isAdmin = !!(state.me && state.me.role === 'admin');
    el.reply.disabled = closed || othersClaim;
    el.reply.lang = lang || state.lang;
    el.useDraft.disabled = closed || othersClaim || !d.ai_draft;
    el.sendReply.disabled = closed || othersClaim;
    el.resolve.disabled = closed || othersClaim;
    el.claim.disabled = closed || (d.status === 'claimed' && (d.owner === me || !isAdmin));
    el.reopen.hidden = !closed;
    el.replyHint.textContent = t(closed ? 'replyClosedHint' : 'replyHint');
    renderTransfer(d, closed || othersClaim);
    renderLabel(d);
    renderTimeline(d.timeline);

    var current = el.list.querySelectorAll('.ticket');
    for (var i = 0; i < current.length; i++) {
      if (current[i].getAttribute('data-id') === String(d.id)) current[i].setAttribute('aria-current', 'true');
      else current[i].removeAttribute('aria-current');
    }
  }

  function renderTransfer(d, blocked) {
    var select = el.transferQueue;
    var current = select.value;
    select.textContent = '';
    state.queues.forEach(function (q) {
      if (q.name === d.queue) return;
      var opt = document.createElement('option');
      opt.value = q.name;
      opt.textContent = queueLabel(q.name);
      select.appendChild(opt);
    });
    if (current) select.value = current;
    var none = select.options.length === 0;
    select.disabled = none || blocked;
    el.transferNote.disabled = none || blocked;
    el.transferButton.disabled = none || blocked;
  }

  function labelValue(v) {
    return v === true ? 'true' : v === false ? 'false' : '';
  }

  function renderLabel(d) {
    var label = d.label || null;
    if (state.labelShownFor !== d.id) {
      // Only on opening (or after saving): a refresh must not undo a choice being made.
      state.labelShownFor = d.id;
      el.labelDepartment.value = labelValue(label && label.department_correct);
      el.labelAnswer.value = labelValue(label && label.answer_correct);
    }
    if (state.labelUnavailable) el.labelState.textContent = t('labelUnavailable');
    else if (label && label.labelled_by)
      el.labelState.textContent = t('labelBy', { who: label.labelled_by, when: formatDate(label.labelled_at) });
    else el.labelState.textContent = t('labelNone');
  }

  function renderTimeline(entries) {
    el.timeline.textContent = '';
    (Array.isArray(entries) ? entries : []).forEach(function (e) {
      var li = node('li', 'tl tl--' + String(e.kind || '').replace(/[^a-z_]/g, ''));
      var meta = node('p', 'tl__meta');
      var time = node('time', null, formatDate(e.at));
      time.dateTime = e.at;
      meta.appendChild(time);
      var who = e.actor === 'resident' ? t('byResident') : e.actor === 'router' ? t('byRouter') : e.actor;
      meta.appendChild(document.createTextNode(' · ' + who));
      li.appendChild(meta);
      var kinds = t('kinds') || {};
      var template = Object.prototype.hasOwnProperty.call(kinds, e.kind) ? kinds[e.kind] : String(e.kind);
      var what = template
        .replace('{from_queue}', queueLabel(e.from_queue))
        .replace('{to_queue}', queueLabel(e.to_queue));
      if (e.from_status && e.to_status && e.from_status !== e.to_status) {
        what += ' (' + t('changeStatus', { from: lookup('st', e.from_status), to: lookup('st', e.to_status) }) + ')';
      }
      li.appendChild(node('p', 'tl__what', what));
      if (e.note) li.appendChild(node('p', 'tl__note', e.note));
      el.timeline.appendChild(li);
    });
  }

  function openTicket(id, moveFocus) {
    if (state.openId !== null && state.openId !== id) state.drafts.set(state.openId, el.reply.value);
    var switching = state.openId !== id;
    state.openId = id;
    if (switching) {
      el.reply.value = state.drafts.get(id) || '';
      el.note.value = '';
      el.transferNote.value = '';
      state.labelShownFor = null;
      state.prefill = !state.drafts.has(id);
    }
    try {
      window.history.replaceState(null, '', '#ticket-' + id);
    } catch (e) {
      /* not important */
    }
    return loadDetail(id).then(
      function (shown) {
        if (shown && moveFocus) el.detailTitle.focus();
      },
      function (err) {
        if (err instanceof ApiError && (err.status === 404 || err.status === 403)) {
          state.openId = null;
          state.detail = null;
          renderDetail();
          forgetHash();
        }
        say(errorText(err), 'error');
      }
    );
  }

  function forgetHash() {
    try {
      window.history.replaceState(null, '', window.location.pathname + window.location.search);
    } catch (e) {
      /* not important */
    }
  }

  /* Fetches and shows ticket id; resolves true if shown, false if the answer came too late
   * (another ticket opened, or signed out meanwhile); rejects only while still current. */
  function loadDetail(id) {
    var gen = state.generation;
    function current() {
      return state.openId === id && gen === state.generation;
    }
    return api('GET', ticketPath(id)).then(
      function (detail) {
        if (!current()) return false;
        state.detail = detail;
        // A reply starts from the AI's draft, for the agent to edit.
        if (state.prefill && !el.reply.value && detail.ai_draft && detail.status !== 'resolved') {
          el.reply.value = detail.ai_draft;
        }
        state.prefill = false;
        renderDetail();
        return true;
      },
      function (err) {
        if (!current()) return false;
        throw err;
      }
    );
  }

  function refreshOpen() {
    if (state.openId === null) return Promise.resolve();
    return loadDetail(state.openId).catch(function () {
      /* the next event or action tries again */
    });
  }

  function refreshAll() {
    return Promise.all([loadList(), refreshOpen()]);
  }

  function scheduleRefresh() {
    window.clearTimeout(state.refreshTimer);
    state.refreshTimer = window.setTimeout(refreshAll, 150);
  }

  // ---- actions -----------------------------------------------------------------------

  function sendReply() {
    var d = state.detail;
    if (!d || state.busy) return;
    var text = el.reply.value.trim();
    if (!text) {
      say(t('replyEmpty'), 'error');
      el.reply.focus();
      return;
    }
    state.busy = true;
    el.replyForm.setAttribute('aria-busy', 'true');
    say(t('sending'), 'info');
    api('POST', ticketPath(d.id, '/reply'), { text: text })
      .then(function (res) {
        state.busy = false;
        el.replyForm.removeAttribute('aria-busy');
        if (state.openId === d.id) el.reply.value = '';
        state.drafts.delete(d.id);
        say(t(res && res.queued === false ? 'replyStored' : 'replySent'), 'success');
        return refreshAll();
      })
      .catch(function (err) {
        state.busy = false;
        el.replyForm.removeAttribute('aria-busy');
        if (err instanceof ApiError && err.status === 409) {
          say(t(d.status === 'resolved' ? 'replyConflict' : 'conflict'), 'error');
        } else {
          say(errorText(err), 'error');
        }
        return refreshAll();
      });
  }

  function resolveTicket() {
    ticketAction('resolve', undefined, 'resolving', function (detail, d) {
      say(t('resolved', { case: d.case_number }), 'success');
      el.detailTitle.focus();
    });
  }

  /* A lifecycle action on the open ticket that answers with the ticket; then() gets it. */
  function ticketAction(action, body, busyKey, then) {
    var d = state.detail;
    if (!d || state.busy) return;
    state.busy = true;
    say(t(busyKey), 'info');
    // Free as soon as the server has answered: refreshing the list needs no lock.
    api('POST', ticketPath(d.id, '/' + action), body)
      .then(function (detail) {
        state.busy = false;
        if (state.openId === d.id && detail && detail.id === d.id) {
          state.detail = detail;
          renderDetail();
        }
        then(detail, d);
        return loadList();
      })
      .catch(function (err) {
        state.busy = false;
        say(err instanceof ApiError && err.status === 409 ? t('conflict') : errorText(err), 'error');
        return refreshAll();
      });
  }

  function claimTicket() {
    ticketAction('claim', undefined, 'claiming', function (detail, d) {
      say(t('claimed', { case: d.case_number }), 'success');
      // The next step is the reply.
      if (!el.reply.disabled) el.reply.focus();
    });
  }

  function reopenTicket() {
    ticketAction('reopen', undefined, 'reopening', function (detail, d) {
      say(t('reopened', { case: d.case_number }), 'success');
      el.detailTitle.focus();
    });
  }

  function addNote() {
    var text = el.note.value.trim();
    if (!text) {
      say(t('noteEmpty'), 'error');
      el.note.focus();
      return;
    }
    ticketAction('note', { text: text }, 'saving', function () {
      el.note.value = '';
      say(t('noteSaved'), 'success');
    });
  }

  function transferTicket() {
    var queue = el.transferQueue.value;
    var note = el.transferNote.value.trim();
    if (!queue) return;
    if (!note) {
      say(t('transferNoteEmpty'), 'error');
      el.transferNote.focus();
      return;
    }
    ticketAction('transfer', { queue: queue, note: note }, 'saving', function (detail, d) {
      el.transferNote.value = '';
      say(t('transferred', { case: d.case_number, queue: queueLabel(queue) }), 'success');
      var mine = state.me && (state.me.role === 'admin' || (state.me.queues || []).indexOf(queue) >= 0);
      if (!mine) {
        // Out of this agent's queues: nothing more to show here.
        state.openId = null;
        state.detail = null;
        renderDetail();
        forgetHash();
        el.listTitle.focus();
      } else {
        el.detailTitle.focus();
      }
    });
  }

  function saveLabel() {
    var d = state.detail;
    if (!d || state.busy) return;
    function value(v) {
      return v === 'true' ? true : v === 'false' ? false : null;
    }
    state.busy = true;
    api('POST', ticketPath(d.id, '/label'), {
      department_correct: value(el.labelDepartment.value),
      answer_correct: value(el.labelAnswer.value)
    })
      .then(function (label) {
        state.labelUnavailable = false;
        if (state.detail && state.detail.id === d.id) {
          state.detail.label = label;
          state.labelShownFor = null;
          renderDetail();
        }
        say(t('labelSaved'), 'success');
      })
      .catch(function (err) {
        var missing = err instanceof ApiError && (err.status === 404 || err.status === 405) && err.detail !== 'No such ticket.';
        if (missing) {
          // The labels API is not on this server (yet): say so, and leave the rest working.
          state.labelUnavailable = true;
          renderDetail();
          say(t('labelUnavailable'), 'info');
        } else {
          say(errorText(err), 'error');
        }
      })
      .then(function () {
        state.busy = false;
      });
  }

  // ---- live updates ------------------------------------------------------------------

  function closeEvents() {
    window.clearTimeout(state.reopenTimer);
    if (state.events) state.events.close();
    state.events = null;
  }

  function connectEvents() {
    closeEvents();
    if (typeof window.EventSource !== 'function') return;
    var source = new EventSource('/api/tickets/events');
    state.events = source;
    source.addEventListener('ready', function () {
      setLive('on');
      scheduleRefresh();
    });
    source.addEventListener('ticket', scheduleRefresh);
    source.addEventListener('error', function () {
      if (state.events !== source) return;
      setLive('lost');
      if (source.readyState === EventSource.CLOSED) {
        state.events = null;
        // Refused: perhaps the session ended (then the sign-in form), else try again later.
        api('GET', '/api/auth/me').then(
          function () {
            if (state.me) state.reopenTimer = window.setTimeout(connectEvents, 5000);
          },
          function (err) {
            if (!state.me) return;
            if (err instanceof ApiError && err.status === 401) showLogin('sessionExpired', 'error');
            else state.reopenTimer = window.setTimeout(connectEvents, 5000);
          }
        );
      }
    });
  }

  // ---- signing in and out ------------------------------------------------------------

  function renderAccount() {
    el.accountName.textContent = state.me ? t('signedInAs', { name: state.me.username }) : '';
    // Admins tune the handoff thresholds on their own page.
    var admin = !!(state.me && state.me.role === 'admin');
    el.adminLink.hidden = !admin;
    el.adminSep.hidden = !admin;
  }

  function loginSay(key, kind, values) {
    state.loginMessage = key ? { key: key, kind: kind || 'info', values: values || null } : null;
    renderLoginMessage();
  }

  function renderLoginMessage() {
    var m = state.loginMessage;
    el.loginMessage.setAttribute('data-kind', m ? m.kind : 'info');
    el.loginMessage.textContent = m ? t(m.key, m.values || undefined) : '';
  }

  function markInvalid(input, invalid) {
    if (invalid) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }

  function stopConsole() {
    state.generation++;
    state.me = null;
    closeEvents();
    window.clearTimeout(state.refreshTimer);
    // Nothing of the residents' data stays on a signed-out page.
    state.tickets = [];
    state.known = null;
    state.listAgain = false;
    state.openId = null;
    state.detail = null;
    el.list.textContent = '';
    el.status.textContent = '';
    el.announcer.textContent = '';
    state.overdue = null;
    renderOverdue();
    renderDetail();
  }

  /* The console and its top bar parts, or the sign-in form. */
  function showView(signedIn) {
    el.loginView.hidden = signedIn;
    [el.consoleView, el.account, el.live, el.skipLink].forEach(function (part) {
      part.hidden = !signedIn;
    });
  }

  function showLogin(messageKey, kind) {
    var wasSignedIn = state.me !== null;
    stopConsole();
    showView(false);
    el.loginPassword.value = '';
    loginSay(null);
    renderAccount();
    (el.loginUsername.value ? el.loginPassword : el.loginUsername).focus();
    if (messageKey) {
      // Set once the region is shown, so that screen readers announce it.
      window.setTimeout(function () {
        if (!state.me) loginSay(messageKey, kind);
      }, wasSignedIn ? 50 : 0);
    }
  }

  function startConsole(me, moveFocus) {
    state.generation++;
    if (state.lastUser !== null && state.lastUser !== me.username) state.drafts = new Map();
    state.me = me;
    state.lastUser = me.username;
    loginSay(null);
    showView(true);
    renderAccount();
    setLive('connecting');
    renderList();
    renderDetail();
    if (moveFocus) el.listTitle.focus();
    loadQueues().then(function () {
      if (state.storedQueue && el.queueFilter.value !== state.storedQueue) {
        el.queueFilter.value = state.storedQueue;
        if (el.queueFilter.value !== state.storedQueue) el.queueFilter.value = '';
      }
      loadList();
    });
    var m = /^#ticket-(\d+)$/.exec(window.location.hash);
    if (m) openTicket(Number(m[1]), false);
    connectEvents();
    if (state.agesTimer === null) state.agesTimer = window.setInterval(updateAges, 30000);
  }

  function signIn() {
    if (state.loginBusy) return;
    var username = el.loginUsername.value.trim();
    var password = el.loginPassword.value;
    markInvalid(el.loginUsername, !username);
    markInvalid(el.loginPassword, !password);
    if (!username || !password) {
      loginSay('loginMissing', 'error');
      (username ? el.loginPassword : el.loginUsername).focus();
      return;
    }
    state.loginBusy = true;
    el.loginForm.setAttribute('aria-busy', 'true');
    loginSay('signingIn', 'info');
    api('POST', '/api/auth/login', { username: username, password: password })
      .then(function (me) {
        state.csrf = (me && me.csrf_token) || '';
        el.loginPassword.value = '';
        startConsole(me, true);
      })
      .catch(function (err) {
        var status = err instanceof ApiError ? err.status : -1;
        if (status === 429) loginSay('loginThrottled', 'error', { s: err.retryAfter || 60 });
        else if (status === 401) loginSay('loginFailed', 'error');
        else loginSay(status === 0 ? 'errorLoad' : 'errorGeneric', 'error');
        el.loginPassword.value = '';
        el.loginPassword.focus();
      })
      .then(function () {
        state.loginBusy = false;
        el.loginForm.removeAttribute('aria-busy');
      });
  }

  function signOut() {
    api('POST', '/api/auth/logout')
      .catch(function () {
        /* the form shows anyway; an unended session expires by itself */
      })
      .then(function () {
        state.drafts = new Map();
        state.lastUser = null;
        showLogin('signedOut', 'success');
      });
  }

  // ---- language ----------------------------------------------------------------------

  function saveStore() {
    N.saveStore(STORE_KEY, {
      language: state.lang,
      queue: el.queueFilter.value,
      status: el.statusFilter.value,
      urgent: el.urgentFilter.checked,
      overdue: el.overdueFilter.checked,
      mine: el.mineFilter.checked
    });
  }

  function applyLanguage(lang) {
    state.lang = N.supported(lang) ? lang : 'fi';
    N.applyTexts(state.lang, t);
    setLive(state.live);
    renderAccount();
    renderLoginMessage();
    renderQueueOptions();
    renderList();
    renderOverdue();
    renderDetail();
    saveStore();
  }

  // ---- wiring ------------------------------------------------------------------------

  function init() {
    [
      ['skipLink', 'skip-link'],
      ['account', 'account'],
      ['accountName', 'account-name'],
      ['signOut', 'sign-out'],
      ['adminLink', 'admin-link'],
      ['adminSep', 'admin-sep'],
      ['loginView', 'login-view'],
      ['loginForm', 'login-form'],
      ['loginUsername', 'login-username'],
      ['loginPassword', 'login-password'],
      ['loginMessage', 'login-message'],
      ['consoleView', 'console-view'],
      ['status', 'status'],
      ['announcer', 'announcer'],
      ['live', 'live'],
      ['liveText', 'live-text'],
      ['queueFilter', 'queue-filter'],
      ['filters', 'filters'],
      ['statusFilter', 'status-filter'],
      ['searchFilter', 'search-filter'],
      ['urgentFilter', 'urgent-filter'],
      ['overdueFilter', 'overdue-filter'],
      ['mineFilter', 'mine-filter'],
      ['overdueCount', 'overdue-count'],
      ['claim', 'claim'],
      ['reopen', 'reopen'],
      ['noteForm', 'note-form'],
      ['note', 'note'],
      ['transferForm', 'transfer-form'],
      ['transferQueue', 'transfer-queue'],
      ['transferNote', 'transfer-note'],
      ['transferButton', 'transfer'],
      ['labelForm', 'label-form'],
      ['labelDepartment', 'label-department'],
      ['labelAnswer', 'label-answer'],
      ['labelState', 'label-state'],
      ['timeline', 'timeline'],
      ['count', 'ticket-count'],
      ['list', 'ticket-list'],
      ['listTitle', 'ticket-list-title'],
      ['detailTitle', 'detail-title'],
      ['detailHint', 'detail-hint'],
      ['detail', 'detail'],
      ['urgentBanner', 'urgent-banner'],
      ['facts', 'facts'],
      ['draft', 'draft'],
      ['sources', 'sources'],
      ['sourcesTitle', 'sources-title'],
      ['transcript', 'transcript'],
      ['replyForm', 'reply-form'],
      ['reply', 'reply'],
      ['replyHint', 'reply-hint'],
      ['useDraft', 'use-draft'],
      ['sendReply', 'send-reply'],
      ['resolve', 'resolve']
    ].forEach(function (pair) {
      el[pair[0]] = document.getElementById(pair[1]);
    });

    var stored = N.loadStore(STORE_KEY);
    if (STATUS_FILTERS.indexOf(stored.status) >= 0) el.statusFilter.value = stored.status;
    el.urgentFilter.checked = stored.urgent === true;
    el.overdueFilter.checked = stored.overdue === true;
    el.mineFilter.checked = stored.mine === true;
    state.storedQueue = typeof stored.queue === 'string' ? stored.queue : '';
    applyLanguage(N.startLanguage(stored.language));

    el.list.addEventListener('click', function (ev) {
      var button = ev.target.closest('.ticket');
      if (!button) return;
      // Keyboard activation (Enter/Space) reports detail 0: then focus moves to the ticket.
      openTicket(Number(button.getAttribute('data-id')), true);
    });
    [el.queueFilter, el.statusFilter, el.urgentFilter, el.overdueFilter, el.mineFilter].forEach(function (input) {
      input.addEventListener('change', function () {
        saveStore();
        loadList();
      });
    });
    var searchTimer = null;
    el.searchFilter.addEventListener('input', function () {
      window.clearTimeout(searchTimer);
      searchTimer = window.setTimeout(loadList, 300);
    });
    el.filters.addEventListener('submit', function (ev) {
      ev.preventDefault(); // Enter in the search field searches at once
      window.clearTimeout(searchTimer);
      loadList();
    });
    el.claim.addEventListener('click', claimTicket);
    el.reopen.addEventListener('click', reopenTicket);
    el.noteForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      addNote();
    });
    el.transferForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      transferTicket();
    });
    el.labelForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      saveLabel();
    });
    el.replyForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      sendReply();
    });
    el.reply.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        sendReply();
      }
    });
    el.useDraft.addEventListener('click', function () {
      if (state.detail && state.detail.ai_draft) {
        el.reply.value = state.detail.ai_draft;
        el.reply.focus();
      }
    });
    el.resolve.addEventListener('click', resolveTicket);
    el.loginForm.addEventListener('submit', function (ev) {
      ev.preventDefault();
      signIn();
    });
    [el.loginUsername, el.loginPassword].forEach(function (input) {
      input.addEventListener('input', function () {
        if (input.value) markInvalid(input, false);
      });
    });
    el.signOut.addEventListener('click', signOut);
    N.onLanguageSwitch(applyLanguage);

    api('GET', '/api/auth/me').then(
      function (me) {
        startConsole(me, false);
      },
      function (err) {
        var status = err instanceof ApiError ? err.status : -1;
        showLogin(status === 401 ? null : 'errorLoad', 'error');
      }
    );
  }

  N.ready(init);
})();
