// The browser side of gesture_utils.demo.CameraWidget (an anywidget module).
//
// The camera is read here, with getUserMedia, so it works wherever the notebook page
// runs: a local JupyterLab, a remote JupyterHub, Colab. Every 1/fps seconds a
// frame is scaled to the model's size, JPEG-encoded and sent to the kernel with its
// capture time; at most `max_in_flight` frames wait for an answer, so a slow kernel
// lowers the frame rate instead of building a queue. The kernel answers each frame with
// the recogniser's label and probabilities; the answer's arrival minus the capture time
// is the capture-to-label delay shown under the picture.
//
// `mirror` flips the preview only (a selfie view) and names left/right swipes as the
// preview shows them; the frames sent to the kernel are what the camera sees.

const SWAP = { swipe_left: "swipe_right", swipe_right: "swipe_left" };
const MESSAGES = {
  denied: "camera permission denied: allow the camera for this page and press Start",
  missing: "no camera found",
  unsupported: "this page cannot use a camera (it needs https or localhost)",
  busy: "the camera is in use by another program",
  ended: "the camera stopped (unplugged, or taken by another program)",
  error: "the camera could not be started",
  elsewhere: "the camera is shown in another view of this widget",
};
const STALE_MS = 2000; // an unanswered frame older than this is given up

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  return e;
}

function percentile(xs, q) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function render({ model, el: host }) {
  const root = el("div", "gc-root");
  const head = el("div", "gc-head");
  const start = el("button", "gc-start", "Start camera");
  const stop = el("button", "gc-stop", "Stop");
  const source = el("span", "gc-source");
  head.append(start, stop, source);
  const body = el("div", "gc-body");
  const view = el("canvas", "gc-view");
  const side = el("div", "gc-side");
  const label = el("div", "gc-label", "-");
  const bars = el("div", "gc-bars");
  const stats = el("div", "gc-stats");
  side.append(label, bars, stats);
  body.append(view, side);
  const message = el("div", "gc-message");
  const events = el("ul", "gc-events");
  root.append(head, message, body, events);
  host.appendChild(root);

  const video = el("video");
  video.muted = true;
  video.playsInline = true;
  const grab = el("canvas");
  let stream = null, timer = null, seq = 0, starting = false;
  const me = Symbol("view"); // the view that owns the camera, if several show this widget
  const sent = new Map(); // seq -> capture time (ms, performance.now())
  const delays = [], answered = [];

  // left/right named as the preview shows them: swapped only for a mirrored camera
  const shown = (name) => (model.get("mirror") && stream ? SWAP[name] || name : name);

  function setState(state, text) {
    root.dataset.state = state;
    if (state !== "live" && state !== "starting") model.set("running", false);
    model.set("camera", state);
    model.set("camera_error", state in MESSAGES ? text || MESSAGES[state] : "");
    model.save_changes();
  }

  function drawBars(probs) {
    const labels = model.get("labels");
    if (bars.childElementCount !== labels.length) {
      bars.replaceChildren(...labels.map(() => {
        const row = el("div", "gc-bar");
        row.append(el("span", "gc-bar-name"), el("span", "gc-bar-fill")); // named below
        return row;
      }));
    }
    labels.forEach((name, k) => {
      const p = probs ? probs[k] : 0;
      bars.children[k].firstChild.textContent = shown(name);
      bars.children[k].lastChild.style.width = `${Math.round(100 * p)}%`;
      bars.children[k].dataset.p = p.toFixed(3);
    });
  }

  function showSource() {
    const name = model.get("source");
    source.textContent = name ? `source: ${name}` : "no source";
    message.textContent = model.get("message");
    view.style.transform = model.get("mirror") && stream ? "scaleX(-1)" : "";
  }

  function logEvent(ev) {
    const item = el("li", "gc-event", `${shown(ev.label)} (${ev.confidence.toFixed(2)})`);
    item.dataset.label = shown(ev.label);
    item.dataset.frame = ev.frame;
    events.prepend(item);
    while (events.childElementCount > model.get("log_size")) events.lastChild.remove();
  }

  function showStats(now) {
    while (answered.length && now - answered[0] > 2000) answered.shift();
    const fps = answered.length > 1 ? (answered.length - 1) / ((answered.at(-1) - answered[0]) / 1000) : 0;
    const p50 = percentile(delays, 0.5), p95 = percentile(delays, 0.95);
    stats.textContent = `${fps.toFixed(1)} fps · capture to label ${p50.toFixed(0)} ms (p50), ${p95.toFixed(0)} ms (p95)`;
    Object.assign(stats.dataset, { fps: fps.toFixed(2), delayP50: p50.toFixed(1), delayP95: p95.toFixed(1) });
  }

  function onResult(msg, buffers) {
    const now = performance.now();
    if (msg.image && buffers && buffers.length) drawJpeg(buffers[0]);
    label.textContent = shown(msg.label);
    label.dataset.label = shown(msg.label);
    drawBars(msg.probs);
    if (msg.event) logEvent(msg.event);
    if (msg.seq !== undefined && sent.has(msg.seq)) {
      delays.push(now - sent.get(msg.seq));
      if (delays.length > 200) delays.shift();
      sent.delete(msg.seq);
      answered.push(now);
      showStats(now);
    }
  }

  async function drawJpeg(buffer) {
    const bitmap = await createImageBitmap(new Blob([buffer], { type: "image/jpeg" }));
    view.width = bitmap.width;
    view.height = bitmap.height;
    view.getContext("2d").drawImage(bitmap, 0, 0);
  }

  function giveUpStale(now) {
    let stale = 0;
    for (const [id, t] of sent) if (now - t > STALE_MS) { sent.delete(id); stale++; }
    if (stale) message.textContent = "the kernel is not answering (busy with a cell, or restarted?)";
  }

  function capture() {
    if (!stream || !video.videoWidth) return;
    giveUpStale(performance.now());
    if (sent.size >= model.get("max_in_flight")) return;
    const side = model.get("size");
    const scale = side / Math.min(video.videoWidth, video.videoHeight);
    grab.width = Math.round(video.videoWidth * scale);
    grab.height = Math.round(video.videoHeight * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    view.width = video.videoWidth;
    view.height = video.videoHeight;
    view.getContext("2d").drawImage(video, 0, 0);
    const id = seq++, t = performance.now();
    grab.toBlob(async (blob) => {
      if (!blob || !stream) return;
      sent.set(id, t);
      model.send({ type: "frame", seq: id, t: t }, undefined, [await blob.arrayBuffer()]);
    }, "image/jpeg", model.get("quality"));
  }

  async function startCamera() {
    if (stream || starting) return;
    if (model.gcOwner && model.gcOwner !== me) { message.textContent = MESSAGES.elsewhere; return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return setState("unsupported");
    starting = true;
    model.gcOwner = me;
    setState("starting");
    let got;
    try {
      got = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: false });
      video.srcObject = got;
      await video.play();
    } catch (e) {
      if (got) got.getTracks().forEach((t) => t.stop());
      const kind = { NotAllowedError: "denied", SecurityError: "denied", NotFoundError: "missing",
        OverconstrainedError: "missing", NotReadableError: "busy" }[e.name] || "error";
      starting = false;
      model.gcOwner = null;
      return setState(kind, `${MESSAGES[kind]} (${e.name}: ${e.message})`);
    }
    starting = false;
    if (!model.get("running")) { // Stop was pressed while the browser asked for permission
      got.getTracks().forEach((t) => t.stop());
      model.gcOwner = null;
      return setState("off");
    }
    stream = got;
    stream.getVideoTracks().forEach((t) => t.addEventListener("ended", () => stopCamera("ended")));
    sent.clear();
    setState("live");
    showSource();
    timer = setInterval(capture, 1000 / model.get("fps"));
  }

  function stopCamera(state = "off") {
    clearInterval(timer);
    timer = null;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    video.srcObject = null;
    if (model.gcOwner === me) model.gcOwner = null;
    setState(state);
    showSource();
  }

  // `running` is the wish (the buttons or the kernel set it), `camera` what happened
  const want = (on) => { model.set("running", on); model.save_changes(); };
  start.addEventListener("click", () => want(true));
  stop.addEventListener("click", () => want(false));
  model.on("change:running", () => {
    if (model.get("running")) startCamera();
    else if (stream) stopCamera("off");
  });
  model.on("msg:custom", (msg, buffers) => { if (msg.type === "result") onResult(msg, buffers); });
  model.on("change:source", showSource);
  model.on("change:message", showSource);
  model.on("change:labels", () => drawBars(null));
  // a closed tab or a reloaded page: tell the kernel, which also notices the silence
  const bye = () => { if (stream) { model.send({ type: "closed" }); stopCamera("closed"); } };
  window.addEventListener("pagehide", bye);
  root.dataset.state = model.get("camera");
  drawBars(null);
  showSource();
  if (model.get("running")) startCamera();
  return () => { window.removeEventListener("pagehide", bye); bye(); };
}

export default { render };
