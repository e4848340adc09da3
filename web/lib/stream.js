// The broker's event stream (docs/events.md): one EventSource for all topics,
// whose events are handed to the current view. The page shows the stream's
// state; when it drops, a banner says so. A browser's EventSource reconnects
// by itself after a network error (sending Last-Event-ID); after a refusal
// (a non-200 answer) it gives up, so this reconnects then, resuming with
// `last_event_id`.

const TYPES = ['trade', 'book', 'order', 'head', 'binding', 'round', 'rfq', 'share'];

export class Stream {
  // after: the event id to resume after (the ledger size the page started at).
  constructor({ onEvent, onState, after = null }) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastId = after;
    this.state = 'connecting';
    this.retryMs = 2000;
    this.refusals = 0;  // refusals in a row since the stream was last open
    this.connect();
  }

  connect() {
    const q = this.lastId != null ? `?last_event_id=${encodeURIComponent(this.lastId)}` : '';
    const es = new EventSource(`/v1/events${q}`);
    this.es = es;
    es.onopen = () => {
      this.retryMs = 2000;
      this.refusals = 0;
      this.setState('live');
    };
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        // Refused: after three refusals in a row, perhaps of an id this broker
        // does not have (another database), start afresh from the present.
        if (++this.refusals >= 3) this.lastId = null;
        this.setState('down');
        setTimeout(() => this.connect(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 30000);
      } else {
        this.setState('down');  // the browser is reconnecting
      }
    };
    for (const type of TYPES) {
      es.addEventListener(type, (e) => {
        if (e.lastEventId) this.lastId = e.lastEventId;
        let data;
        try {
          data = JSON.parse(e.data);
        } catch {
          return;
        }
        this.onEvent(type, data);
      });
    }
  }

  setState(s) {
    const was = this.state;
    this.state = s;
    this.onState(s, was);
  }
}
