// digitpass page. Plain JavaScript, no build step, no library. Every request goes to
// this server, by a relative URL. Each section's data-status attribute is "idle",
// "pending", "done" or "error": "done" means the answer shown is the one for the
// current input (the browser tests wait on it).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const SVG_NS = "http://www.w3.org/2000/svg";

  // --- talking to the API ------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  // fetch + JSON; a failure becomes an ApiError carrying the API's own "detail".
  async function api(url, options = {}) {
    let response;
    try {
      response = await fetch(url, options);
    } catch (error) {
      throw new ApiError("cannot reach the server (is it running?)", 0);
    }
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      const detail = body && typeof body.detail === "string" ? body.detail : response.statusText;
      throw new ApiError(detail || "request failed", response.status);
    }
    return body;
  }

  function describe(error) {
    if (error instanceof ApiError && error.status) {
      return `${error.message} (HTTP ${error.status})`;
    }
    return error.message || String(error);
  }

  function showError(element, what, error) {
    element.textContent = `${what}: ${describe(error)}`;
    element.hidden = false;
  }

  function hideError(element) {
    element.hidden = true;
    element.textContent = "";
  }

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  }

  function svg(tag, attributes = {}, text = "") {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  const percent = (p) => `${(100 * p).toFixed(1)} %`;

  // --- digit: drawing, photos, live prediction -----------------------------------------

  const digitCard = $("digit");
  const canvas = $("digit-canvas");
  const ctx = canvas.getContext("2d");
  const predictionOut = $("digit-prediction");
  const confidenceOut = $("digit-confidence");
  const barsList = $("digit-probabilities");
  const seen = $("seen");
  const seenImage = $("seen-image");
  const photoPreview = $("photo-preview");
  const photoImage = $("photo-image");
  const photoInput = $("photo");
  const dropzone = $("dropzone");
  const digitError = $("digit-error");
  const THROTTLE_MS = 150; // while drawing, at most one request per this many ms

  let version = 0; // bumped on every change of the input (stroke, photo, clear)
  let inked = false; // the canvas holds a drawing
  let penId = null; // the pointer drawing now
  let last = null; // its last point, in canvas pixels
  let timer = null;
  let inFlight = false;
  let photoUrl = null;

  const bars = [];
  for (let digit = 0; digit < 10; digit += 1) {
    const fill = el("span", { class: "fill" });
    const value = el("span", { class: "value", text: "" });
    const item = el(
      "li",
      { "data-digit": String(digit) },
      el("span", { class: "digit", text: String(digit) }),
      el("span", { class: "track", "aria-hidden": "true" }, fill),
      value,
    );
    barsList.append(item);
    bars.push({ item, fill, value });
  }

  function paintBlank() {
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#000000";
    ctx.fillStyle = "#000000";
    ctx.lineWidth = canvas.width / 10;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
  }

  function showProbabilities(probabilities, best) {
    bars.forEach((bar, digit) => {
      const p = probabilities ? probabilities[digit] : 0;
      bar.fill.style.width = `${(100 * p).toFixed(2)}%`;
      bar.value.textContent = probabilities ? percent(p) : "";
      bar.item.classList.toggle("best", digit === best);
      bar.item.setAttribute("aria-label", probabilities ? `${digit}: ${percent(p)}` : `${digit}`);
    });
  }

  function resetAnswer() {
    predictionOut.textContent = "";
    confidenceOut.textContent = "";
    showProbabilities(null, -1);
    seen.hidden = true;
    seenImage.removeAttribute("src");
    hideError(digitError);
  }

  function showDigit(body) {
    hideError(digitError);
    predictionOut.textContent = String(body.digit);
    // "uncertain": the model's top probability is under the service's threshold (a
    // half-drawn digit, or not a digit at all); the most likely digit is still shown.
    const unsure = body.uncertain ? "uncertain: " : "";
    confidenceOut.textContent =
      `${unsure}confidence ${percent(body.confidence)}, ` +
      `model ${body.model.name} v${body.model.version}`;
    confidenceOut.classList.toggle("uncertain", body.uncertain === true);
    showProbabilities(body.probabilities, body.digit);
    if (typeof body.canvas === "string") {
      seenImage.src = body.canvas;
      seen.hidden = false;
    }
  }

  // Send the current input; answers for an input that has changed since are dropped.
  async function predict(makeRequest) {
    const asked = version;
    inFlight = true;
    digitCard.dataset.status = "pending";
    try {
      const body = await api("predict/digit?explain=true", await makeRequest());
      if (asked === version) {
        showDigit(body);
        digitCard.dataset.status = "done";
      }
    } catch (error) {
      if (asked === version) {
        resetAnswer();
        showError(digitError, "No prediction", error);
        digitCard.dataset.status = "error";
      }
    } finally {
      inFlight = false;
    }
    if (asked !== version && inked && penId === null && timer === null) {
      predictCanvas(); // the drawing changed while we waited: ask again
    }
  }

  function canvasRequest() {
    return new Promise((resolve, reject) => {
      canvas.toBlob((blob) => {
        if (blob === null) reject(new Error("could not read the canvas"));
        else resolve({ method: "POST", headers: { "Content-Type": "image/png" }, body: blob });
      }, "image/png");
    });
  }

  function predictCanvas() {
    clearTimeout(timer);
    timer = null;
    if (!inked) return;
    if (inFlight) {
      timer = setTimeout(predictCanvas, THROTTLE_MS); // one at a time
      return;
    }
    predict(canvasRequest);
  }

  function changed() {
    version += 1;
    digitCard.dataset.status = "pending";
    if (timer === null) timer = setTimeout(predictCanvas, THROTTLE_MS);
  }

  function canvasPoint(event) {
    const box = canvas.getBoundingClientRect();
    const scale = canvas.width / canvas.clientWidth;
    return [
      (event.clientX - box.left - canvas.clientLeft) * scale,
      (event.clientY - box.top - canvas.clientTop) * scale,
    ];
  }

  function dropPhoto() {
    photoPreview.hidden = true;
    photoImage.removeAttribute("src");
    if (photoUrl !== null) URL.revokeObjectURL(photoUrl);
    photoUrl = null;
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    if (!inked) {
      dropPhoto();
      paintBlank();
    }
    penId = event.pointerId;
    last = canvasPoint(event);
    ctx.beginPath();
    ctx.arc(last[0], last[1], ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    inked = true;
    changed();
  });

  canvas.addEventListener("pointermove", (event) => {
    if (event.pointerId !== penId) return;
    event.preventDefault();
    const moves = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    for (const move of moves.length ? moves : [event]) {
      last = canvasPoint(move);
      ctx.lineTo(last[0], last[1]);
    }
    ctx.stroke();
    changed();
  });

  function penUp(event) {
    if (event.pointerId !== penId) return;
    penId = null;
    last = null;
    predictCanvas(); // the stroke is finished: answer now
  }

  canvas.addEventListener("pointerup", penUp);
  canvas.addEventListener("pointercancel", penUp);

  function clearAll() {
    version += 1;
    clearTimeout(timer);
    timer = null;
    inked = false;
    penId = null;
    paintBlank();
    dropPhoto();
    photoInput.value = "";
    resetAnswer();
    digitCard.dataset.status = "idle";
  }

  $("clear").addEventListener("click", clearAll);

  function sendPhoto(file) {
    clearAll();
    photoUrl = URL.createObjectURL(file);
    photoImage.src = photoUrl;
    $("photo-name").textContent = `Your photo: ${file.name || "dropped image"}`;
    photoPreview.hidden = false;
    version += 1;
    predict(() => {
      const form = new FormData();
      form.append("image", file, file.name || "photo");
      return { method: "POST", body: form };
    });
  }

  photoInput.addEventListener("change", () => {
    if (photoInput.files.length) sendPhoto(photoInput.files[0]);
  });

  for (const name of ["dragenter", "dragover"]) {
    dropzone.addEventListener(name, (event) => {
      event.preventDefault();
      dropzone.classList.add("dragging");
    });
  }
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("dragging"));
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("dragging");
    const files = event.dataTransfer ? event.dataTransfer.files : [];
    if (files.length) sendPhoto(files[0]);
  });

  paintBlank();
  resetAnswer();

  // --- hours: slider, P(pass), points, the sigmoid curve --------------------------------

  const hoursCard = $("hours-card");
  const slider = $("hours");
  const hoursOut = $("hours-value");
  const probabilityOut = $("pass-probability");
  const verdictOut = $("pass-verdict");
  const pointsRow = $("points-row");
  const pointsOut = $("points-prediction");
  const hoursError = $("hours-error");
  const plot = $("sigmoid");
  const PLOT = { left: 40, right: 390, top: 14, bottom: 200, maxHours: 10 };
  const xOf = (hours) => PLOT.left + ((PLOT.right - PLOT.left) * hours) / PLOT.maxHours;
  const yOf = (p) => PLOT.bottom - (PLOT.bottom - PLOT.top) * p;
  let pointsServed = false;
  let hoursAsked = 0;
  let marker = null;

  function moveMarker(hours, probability) {
    if (marker === null) {
      marker = svg("circle", { class: "marker", r: "5" });
      plot.append(marker);
    }
    marker.setAttribute("cx", xOf(hours).toFixed(1));
    marker.setAttribute("cy", yOf(probability).toFixed(1));
    plot.append(marker); // keep it on top
  }

  async function updateHours() {
    const value = slider.value; // "4", "2.5": the range input's own decimal string
    const hours = Number(value);
    hoursOut.textContent = `${hours.toFixed(1)} h`;
    slider.setAttribute("aria-valuetext", `${hours.toFixed(1)} hours`);
    const asked = ++hoursAsked;
    hoursCard.dataset.status = "pending";
    try {
      const requests = [api(`predict/pass?hours=${encodeURIComponent(value)}`)];
      if (pointsServed) requests.push(api(`predict/points?hours=${encodeURIComponent(value)}`));
      const [pass, points] = await Promise.all(requests);
      if (asked !== hoursAsked) return;
      hideError(hoursError);
      probabilityOut.textContent = pass.probability.toFixed(3);
      verdictOut.textContent = pass.passed ? "pass" : "fail";
      verdictOut.className = pass.passed ? "passed" : "failed";
      if (points) pointsOut.textContent = Number(points.points).toFixed(1);
      moveMarker(hours, pass.probability);
      hoursCard.dataset.status = "done";
    } catch (error) {
      if (asked !== hoursAsked) return;
      probabilityOut.textContent = "";
      verdictOut.textContent = "";
      showError(hoursError, "No prediction", error);
      hoursCard.dataset.status = "error";
    }
  }

  slider.addEventListener("input", updateHours);

  // The decision boundary: where the model's answers cross 0.5, interpolated.
  function boundary(hours, probabilities) {
    for (let i = 1; i < hours.length; i += 1) {
      const [p0, p1] = [probabilities[i - 1], probabilities[i]];
      if (p0 < 0.5 && p1 >= 0.5) {
        return hours[i - 1] + ((0.5 - p0) / (p1 - p0)) * (hours[i] - hours[i - 1]);
      }
    }
    return null;
  }

  async function drawCurve() {
    const hours = Array.from({ length: 101 }, (_, i) => i / 10);
    let answer;
    try {
      answer = await api("predict/pass", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ hours }),
      });
    } catch (error) {
      showError(hoursError, "No curve", error);
      return;
    }
    const probabilities = answer.predictions.map((row) => row.probability);
    plot.replaceChildren();
    for (let h = 0; h <= PLOT.maxHours; h += 1) {
      plot.append(svg("line", { class: "grid", x1: xOf(h), x2: xOf(h), y1: yOf(0), y2: yOf(1) }));
      plot.append(svg("text", { x: xOf(h), y: PLOT.bottom + 14, "text-anchor": "middle" }, `${h}`));
    }
    for (const p of [0, 0.5, 1]) {
      plot.append(svg("text", { x: PLOT.left - 6, y: yOf(p) + 4, "text-anchor": "end" }, `${p}`));
    }
    plot.append(svg("line", { class: "axis", x1: xOf(0), x2: xOf(10), y1: yOf(0), y2: yOf(0) }));
    plot.append(svg("line", { class: "axis", x1: xOf(0), x2: xOf(0), y1: yOf(0), y2: yOf(1) }));
    plot.append(
      svg("text", { x: (PLOT.left + PLOT.right) / 2, y: PLOT.bottom + 32, "text-anchor": "middle" },
        "hours studied"),
    );
    plot.append(
      svg("line", { class: "half", "data-testid": "half-line", x1: xOf(0), x2: xOf(10), y1: yOf(0.5), y2: yOf(0.5) }),
    );
    const points = hours.map((h, i) => `${xOf(h).toFixed(1)},${yOf(probabilities[i]).toFixed(1)}`);
    plot.append(svg("polyline", { class: "sigmoid", points: points.join(" ") }));
    const edge = boundary(hours, probabilities);
    if (edge !== null) {
      plot.append(svg("line", { class: "boundary", "data-testid": "decision-boundary",
        "data-hours": edge.toFixed(3), x1: xOf(edge), x2: xOf(edge), y1: yOf(0), y2: yOf(1) }));
      plot.append(svg("text", { class: "boundary-label", x: xOf(edge) + 6, y: yOf(0.08) },
        `boundary ${edge.toFixed(2)} h`));
    }
    plot.dataset.model = `${answer.model.name} v${answer.model.version}`;
    updateHours(); // puts the marker back
  }

  // --- models: versions, accuracy, confusion matrix, training curves --------------------

  const modelsCard = $("models");
  const modelList = $("model-list");
  const modelsError = $("models-error");

  function heatmap(matrix, labels) {
    const max = Math.max(1, ...matrix.flat());
    const table = el("table", { class: "heatmap", "data-testid": "confusion-matrix" });
    table.append(el("caption", {
      text: "Confusion matrix on the test set: rows are the true digit, columns the predicted one",
    }));
    const head = el("tr", {}, el("th", { scope: "col", text: "" }));
    labels.forEach((label) => head.append(el("th", { scope: "col", text: label })));
    table.append(el("thead", {}, head));
    const rows = el("tbody");
    matrix.forEach((row, i) => {
      const tr = el("tr", {}, el("th", { scope: "row", text: labels[i] }));
      row.forEach((count, j) => {
        const strength = Math.log1p(count) / Math.log1p(max);
        const cell = el("td", {
          text: String(count),
          title: `true ${labels[i]}, predicted ${labels[j]}: ${count}`,
        });
        cell.style.background = `rgb(36 87 197 / ${strength.toFixed(3)})`;
        cell.style.color = strength > 0.55 ? "#fff" : "#1d2430";
        tr.append(cell);
      });
      rows.append(tr);
    });
    table.append(rows);
    return el("div", { class: "table-scroll" }, table);
  }

  async function trainingCurves(model) {
    const base = `models/${encodeURIComponent(model.name)}/${model.version}/files`;
    const { files } = await api(base);
    const box = el("div", { class: "curves" });
    for (const file of files) {
      const title = file.replace(/\.png$/i, "").replace(/_/g, " ");
      box.append(el("figure", {},
        el("img", { src: `${base}/${encodeURIComponent(file)}`, alt: `${model.name} ${title}`, loading: "lazy" }),
        el("figcaption", { text: file })));
    }
    return box;
  }

  function describeModel(model) {
    const metrics = model.metrics || {};
    const facts = [`${model.backend} on ${model.device}`];
    if (typeof metrics.test_accuracy === "number") facts.push(`test accuracy ${percent(metrics.test_accuracy)}`);
    else if (typeof metrics.accuracy === "number") facts.push(`accuracy ${percent(metrics.accuracy)}`);
    if (typeof metrics.decision_boundary_hours === "number") {
      facts.push(`decision boundary ${metrics.decision_boundary_hours.toFixed(2)} h`);
    }
    const card = el("article", { class: "model", "data-model": model.name },
      el("h3", { text: `${model.name} v${model.version}` }),
      el("p", { class: "facts", text: facts.join(" · ") }));
    if (Array.isArray(metrics.confusion_matrix)) {
      card.append(heatmap(metrics.confusion_matrix, model.labels || []));
    }
    return card;
  }

  async function loadModels() {
    modelsCard.dataset.status = "pending";
    let body;
    try {
      body = await api("models");
    } catch (error) {
      showError(modelsError, "Cannot list the models", error);
      modelsCard.dataset.status = "error";
      return;
    }
    const grid = el("div", { class: "model-grid" });
    const cards = body.models.map((model) => {
      const card = describeModel(model);
      grid.append(card);
      return [model, card];
    });
    modelList.replaceChildren(grid);
    pointsServed = body.models.some((model) => model.name === "points");
    pointsRow.hidden = !pointsServed;
    if (pointsServed) updateHours();
    const failures = [];
    await Promise.all(cards.map(async ([model, card]) => {
      try {
        card.append(await trainingCurves(model));
      } catch (error) {
        failures.push(`${model.name}: ${describe(error)}`);
      }
    }));
    if (failures.length) {
      modelsError.textContent = `Cannot list the training curves of ${failures.join("; ")}`;
      modelsError.hidden = false;
    }
    modelsCard.dataset.status = failures.length ? "error" : "done";
  }

  updateHours();
  drawCurve();
  loadModels();
})();
