// The draw-a-digit page: smooth strokes on a canvas, a debounced prediction while drawing,
// probability bars, and the 28x28 image the model saw. No build step, no dependencies.
"use strict";

const pad = document.getElementById("pad");
const pen = pad.getContext("2d");
const answerBox = document.getElementById("answer");
const digitText = document.getElementById("digit");
const statusText = document.getElementById("status");
const bars = document.getElementById("bars");
const seen = document.getElementById("seen").getContext("2d");
const upload = document.getElementById("upload");

const BRUSH = 22; // px on the 280 px pad: MNIST strokes are about 1/12 of the digit box
const DEBOUNCE_MS = 150;
let drawing = false;
let hasInk = false;
let last = null;
let lastMid = null;
let timer = null;
let sequence = 0; // answers to superseded requests are dropped

for (let d = 0; d < 10; d++) {
  const row = document.createElement("li");
  row.innerHTML = `<span>${d}</span><span class="track"><span class="fill"></span></span>` +
    `<span class="pct">0%</span>`;
  row.setAttribute("aria-label", `${d}: 0%`);
  bars.appendChild(row);
}

function blank() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, pad.width, pad.height);
  pen.strokeStyle = pen.fillStyle = "#000";
  pen.lineWidth = BRUSH;
  pen.lineCap = pen.lineJoin = "round";
}

function clearAll() {
  sequence++;
  clearTimeout(timer);
  blank();
  hasInk = false;
  showEmpty();
}

function showEmpty(message = "Draw a digit") {
  answerBox.dataset.state = "empty";
  digitText.textContent = "?";
  statusText.textContent = message;
  setBars(new Array(10).fill(0));
  seen.clearRect(0, 0, 28, 28);
}

function setBars(probabilities) {
  const top = probabilities.indexOf(Math.max(...probabilities));
  [...bars.children].forEach((row, d) => {
    const pct = Math.round(probabilities[d] * 1000) / 10;
    row.querySelector(".fill").style.width = `${pct}%`;
    row.querySelector(".pct").textContent = `${pct}%`;
    row.setAttribute("aria-label", `${d}: ${pct}%`);
    row.classList.toggle("top", probabilities[d] > 0 && d === top);
  });
}

function show(result) {
  const pct = `${(result.confidence * 100).toFixed(1)}%`;
  answerBox.dataset.state = result.unsure ? "unsure" : "answer";
  digitText.textContent = String(result.digit);
  statusText.textContent = result.digits_seen > 1
    ? `Not sure: that looks like ${result.digits_seen} digits; draw one at a time`
    : result.unsure
      ? `Not sure: maybe a ${result.digit} (${pct})`
      : `It's a ${result.digit} (${pct} sure)`;
  setBars(result.probabilities);
  const pixels = seen.createImageData(28, 28);
  result.image.flat().forEach((v, i) => {
    pixels.data.set([v, v, v, 255], i * 4);
  });
  seen.putImageData(pixels, 0, 0);
}

async function send(file, name) {
  const id = ++sequence;
  const form = new FormData();
  form.append("file", file, name);
  answerBox.setAttribute("aria-busy", "true");
  try {
    const response = await fetch("/api/predict", { method: "POST", body: form });
    const body = await response.json();
    if (id !== sequence) return;
    if (response.ok) show(body);
    else if (/no digit/i.test(body.error)) showEmpty();
    else showEmpty(`Could not read that: ${body.error}`);
  } catch (error) {
    if (id === sequence) showEmpty(`The server did not answer (${error.message})`);
  } finally {
    answerBox.removeAttribute("aria-busy");
  }
}

function predictNow() {
  clearTimeout(timer);
  if (!hasInk) return showEmpty();
  pad.toBlob((blob) => send(blob, "drawing.png"), "image/png");
}

function predictSoon() {
  clearTimeout(timer);
  timer = setTimeout(predictNow, DEBOUNCE_MS);
}

function at(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * pad.width) / box.width,
    y: ((event.clientY - box.top) * pad.height) / box.height,
  };
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  if (pad.dataset.upload) { delete pad.dataset.upload; blank(); }
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  last = lastMid = at(event);
  pen.beginPath();
  pen.arc(last.x, last.y, BRUSH / 2, 0, 2 * Math.PI);
  pen.fill();
  hasInk = true;
});

pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const points = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of points.length ? points : [event]) {
    // A quadratic curve through the midpoints: smooth strokes without corners.
    const p = at(e);
    const mid = { x: (last.x + p.x) / 2, y: (last.y + p.y) / 2 };
    pen.beginPath();
    pen.moveTo(lastMid.x, lastMid.y);
    pen.quadraticCurveTo(last.x, last.y, mid.x, mid.y);
    pen.stroke();
    last = p;
    lastMid = mid;
  }
  predictSoon();
});

function endStroke() {
  if (!drawing) return;
  drawing = false;
  pen.beginPath();
  pen.moveTo(lastMid.x, lastMid.y);
  pen.lineTo(last.x, last.y);
  pen.stroke();
  predictNow();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

document.getElementById("clear").addEventListener("click", clearAll);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") clearAll();
});

upload.addEventListener("change", () => {
  const file = upload.files[0];
  if (!file) return;
  clearAll();
  const picture = new Image();
  picture.onload = () => {
    // Show the photo on the pad (fitted), but predict on the original file.
    const scale = Math.min(pad.width / picture.width, pad.height / picture.height);
    const w = picture.width * scale, h = picture.height * scale;
    pen.drawImage(picture, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    pad.dataset.upload = "1";
    URL.revokeObjectURL(picture.src);
  };
  picture.src = URL.createObjectURL(file);
  send(file, file.name);
  upload.value = "";
});

fetch("/api/model")
  .then((r) => r.json())
  .then((m) => {
    const accuracy = m.test_accuracy == null ? "" : ` · ${(m.test_accuracy * 100).toFixed(2)}% on the MNIST test set`;
    const chosen = m.chosen == null ? "" : ` · chosen for ${m.chosen.for}: ${(m.chosen.suite_mean * 100).toFixed(1)}% on the robustness suite, the best of ${m.chosen.measured_runs} measured`;
    document.getElementById("model-line").textContent = `Model: ${m.name}${accuracy}${chosen}`;
  })
  .catch(() => {});

clearAll();
