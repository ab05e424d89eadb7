/*
 * digits-pad.js: a pad to draw a digit on, the 28x28 image the model sees (with what it looks at, on request),
 * the model's ten probabilities and its verdict, and MNIST's preparation of the drawing with its "not a digit"
 * checks (a port of digits.prepare.to_mnist).
 *
 * A classic script: no modules, no network, no eval. It defines globalThis.DigitPad so that both the report
 * page (digits-tryit.js) and the notebook widget (whose ES module is this file followed by an
 * `export default { render }`) can use it.
 *
 *   DigitPad.mount(root, {ids, onDraw, onStrokeEnd, onClear, onOverlay}) -> pad
 *     pad.canvas, pad.imageData(), pad.clear(), pad.overlay() (is the overlay asked for?),
 *     pad.show({pixels, probabilities, verdict: {kind: "sure" | "unsure" | "problem", text}, saliency})
 *     (onOverlay adds the toggle "What it looks at"; it is called when the toggle changes)
 *   DigitPad.prepare(imageData, preparation) -> {pixels, problem}: pixels a Float32Array(784) of grey levels
 *     0..255 (light ink on black, row-major) or null where none could be made; problem null, or the key of
 *     preparation.reasons ("blank", "edges", "ink", "marks") saying why the image holds no digit;
 *     `preparation` is the exported model's (digits.prepare.PREPARATION).
 */
(function () {
  "use strict";

  const SIDE = 28; // MNIST's images are 28x28
  const CANVAS_SIDE = 280;
  const STROKE_WIDTH = CANVAS_SIDE / 14; // fitted into the 20-pixel box, a stroke is about MNIST's 2 pixels wide
  const PREVIEW_SCALE = 4;
  const INK = "#111";
  const PAPER = "#fff";
  const f32 = Math.fround;

  // --- MNIST's preparation: digits.prepare.to_mnist, step by step --------------------------------------
  // Python computes in float32 (numpy) and Pillow's integer and double arithmetic; each step here rounds
  // where that code rounds (f32 = to float32), so that both give the same image.

  // Pillow's alpha_composite of one channel over white paper, in its 7-bit fixed point (AlphaComposite.c);
  // over opaque white its two coefficients reduce to alpha * 128 and (255 - alpha) * 128.
  function overWhite(channel, alpha) {
    if (alpha === 0) return 255;
    const sum = channel * alpha * 128 + 255 * (255 - alpha) * 128 + (0x80 << 7);
    return (((sum >> 8) + sum) >> 8) >> 7;
  }

  // Grey levels in [0, 1] (0 black) as greyscale(): composited on white, then Pillow's "L" conversion
  // (ITU-R 601-2 luma in 16-bit fixed point, Convert.c).
  function greyscale(imageData) {
    const { data, width, height } = imageData;
    const values = new Float32Array(width * height); // storing rounds each quotient to float32, as numpy
    for (let i = 0; i < values.length; i++) {
      const channel = (offset) => overWhite(data[4 * i + offset], data[4 * i + 3]);
      values[i] = ((channel(0) * 19595 + channel(1) * 38470 + channel(2) * 7471 + 0x8000) >> 16) / 255;
    }
    return { values, width, height };
  }

  // np.median of the border pixels (first and last row, first and last column, corners twice).
  function borderMedian({ values, width, height }) {
    const border = [];
    for (let x = 0; x < width; x++) border.push(values[x], values[(height - 1) * width + x]);
    for (let y = 0; y < height; y++) border.push(values[y * width], values[y * width + width - 1]);
    const sorted = Float32Array.from(border).sort();
    const middle = sorted.length >> 1; // the border's length is even: numpy averages the middle two
    return f32(sorted[middle - 1] + sorted[middle]) / 2;
  }

  // A sliding largest (or smallest) value along each row or column, over `radius` pixels each side, the window
  // clipped at the image's edges: a monotonic queue, linear in the pixels whatever the radius. Smallest values
  // are the largest of the negated ones.
  function slide({ values, width, height }, radius, horizontal, largest) {
    const sign = largest ? 1 : -1;
    const out = new Float32Array(values.length);
    const [lines, length, step, lineStep] = horizontal ? [height, width, 1, width] : [width, height, width, 1];
    const queue = new Int32Array(length);
    for (let line = 0; line < lines; line++) {
      const base = line * lineStep;
      let head = 0;
      let tail = 0;
      let next = 0;
      for (let i = 0; i < length; i++) {
        for (const last = Math.min(i + radius, length - 1); next <= last; next++) {
          const value = sign * values[base + next * step];
          while (tail > head && value >= sign * values[base + queue[tail - 1] * step]) tail--;
          queue[tail++] = next;
        }
        if (queue[head] < i - radius) head++;
        out[base + i * step] = values[base + queue[head] * step];
      }
    }
    return { values: out, width, height };
  }

  // The largest (or smallest) value in the square window of `radius` around each pixel (scipy's grey_dilation,
  // or grey_erosion, of a square with mode "nearest").
  function square(image, radius, largest) {
    return slide(slide(image, radius, true, largest), radius, false, largest);
  }

  // paper_shade(): the grey's closing on light paper (its opening on dark), kept within max_shadow of the
  // border's median.
  function paperShade(grey, light, background, preparation) {
    const radius = Math.max(1, roundHalfEven(preparation.paper_radius * Math.min(grey.width, grey.height)));
    const shade = square(square(grey, radius, light), radius, !light).values;
    const shadow = f32(preparation.max_shadow); // numpy subtracts float32(MAX_SHADOW) from the float32 median
    const limit = f32(light ? background - shadow : background + shadow);
    return shade.map((value) => (light ? Math.max(value, limit) : Math.min(value, limit)));
  }

  // Ink strength in [0, 1] as ink_of(), or null when no ink stands out from the paper (blank).
  function inkOf(grey, preparation) {
    const { values } = grey;
    const background = borderMedian(grey);
    let darkest = Infinity;
    let lightest = -Infinity;
    for (const value of values) {
      darkest = Math.min(darkest, value);
      lightest = Math.max(lightest, value);
    }
    const light = background > f32(darkest + lightest) / 2;
    const paper = paperShade(grey, light, background, preparation);
    const ink = new Float32Array(values.length); // storing rounds each difference to float32, as numpy
    let strongest = 0;
    for (let i = 0; i < values.length; i++) {
      ink[i] = Math.max(light ? paper[i] - values[i] : values[i] - paper[i], 0);
      strongest = Math.max(strongest, ink[i]);
    }
    if (strongest < f32(preparation.min_contrast)) return null; // numpy compares with float32(MIN_CONTRAST)
    const noise = f32(preparation.noise_level);
    const span = f32(1 - preparation.noise_level);
    for (let i = 0; i < ink.length; i++) {
      ink[i] = Math.min(Math.max(f32(f32(ink[i] / strongest) - noise) / span, 0), 1);
    }
    return { values: ink, width: grey.width, height: grey.height };
  }

  // on_every_edge(): ink on the first and last row and column.
  function onEveryEdge({ values, width, height }) {
    let top = false;
    let bottom = false;
    let left = false;
    let right = false;
    for (let x = 0; x < width; x++) {
      top ||= values[x] > 0;
      bottom ||= values[(height - 1) * width + x] > 0;
    }
    for (let y = 0; y < height; y++) {
      left ||= values[y * width] > 0;
      right ||= values[y * width + width - 1] > 0;
    }
    return top && bottom && left && right;
  }

  // The rectangle of rows and columns that hold any ink.
  function inkedBox({ values, width, height }) {
    let top = height;
    let bottom = -1;
    let left = width;
    let right = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (values[y * width + x] > 0) {
          top = Math.min(top, y);
          bottom = Math.max(bottom, y);
          left = Math.min(left, x);
          right = Math.max(right, x);
        }
      }
    }
    return { top, left, width: right - left + 1, height: bottom - top + 1 };
  }

  // Python's round(): halves go to the even neighbour.
  function roundHalfEven(value) {
    const floor = Math.floor(value);
    const fraction = value - floor;
    if (fraction !== 0.5) return Math.round(value);
    return floor % 2 === 0 ? floor : floor + 1;
  }

  function lanczos(x) {
    const sinc = (t) => (t === 0 ? 1 : Math.sin(t * Math.PI) / (t * Math.PI));
    return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
  }

  // Pillow's resampling weights for one axis (precompute_coeffs in Resample.c): for each output pixel, the
  // first input pixel it reads and the normalised Lanczos weights of the pixels from there.
  function lanczosWeights(inSize, outSize) {
    const scale = inSize / outSize;
    const filterScale = Math.max(scale, 1);
    const support = 3 * filterScale;
    const inverseFilterScale = 1 / filterScale;
    const weights = [];
    for (let out = 0; out < outSize; out++) {
      const center = (out + 0.5) * scale;
      const first = Math.max(Math.trunc(center - support + 0.5), 0);
      const count = Math.min(Math.trunc(center + support + 0.5), inSize) - first;
      const k = [];
      let total = 0;
      for (let i = 0; i < count; i++) {
        k.push(lanczos((i + first - center + 0.5) * inverseFilterScale));
        total += k[i];
      }
      weights.push({ first, k: total === 0 ? k : k.map((w) => w / total) });
    }
    return weights;
  }

  // One pass of Pillow's float ("F") resampling, along rows (horizontal) or columns, to `outSize` pixels:
  // sums in double, each result stored as float32.
  function resamplePass(image, outSize, horizontal) {
    const { values, width, height } = image;
    const outWidth = horizontal ? outSize : width;
    const outHeight = horizontal ? height : outSize;
    const weights = lanczosWeights(horizontal ? width : height, outSize);
    const out = new Float32Array(outWidth * outHeight);
    for (let y = 0; y < outHeight; y++) {
      for (let x = 0; x < outWidth; x++) {
        const { first, k } = weights[horizontal ? x : y];
        let sum = 0;
        for (let i = 0; i < k.length; i++) {
          sum += (horizontal ? values[y * width + first + i] : values[(first + i) * width + x]) * k[i];
        }
        out[y * outWidth + x] = sum;
      }
    }
    return { values: out, width: outWidth, height: outHeight };
  }

  // Image.resize(size, LANCZOS) of a float image as Pillow 13 does it (ImagingResampleInner): a pass only
  // for a side whose size changes (a same-size pass is not exactly the identity), and the vertical pass
  // first when the height loses more than twice as many pixels as the width. (Pillow 12 and older always
  // start with the horizontal pass; the order changes the result in the last bits of float32 only.)
  function resizeLanczos(image, outWidth, outHeight) {
    const rowsLost = image.height - outHeight;
    const verticalFirst = rowsLost > 0 && rowsLost > 2 * (image.width - outWidth);
    const horizontal = (im) => (outWidth === image.width ? im : resamplePass(im, outWidth, true));
    const vertical = (im) => (outHeight === image.height ? im : resamplePass(im, outHeight, false));
    return verticalFirst ? horizontal(vertical(image)) : vertical(horizontal(image));
  }

  // fit_box(): the inked region resized so that its longer side is box_side, clipped to [0, 1], then
  // divided by its maximum.
  function fitBox(ink, preparation) {
    const box = inkedBox(ink);
    const region = new Float32Array(box.width * box.height);
    for (let y = 0; y < box.height; y++) {
      const start = (box.top + y) * ink.width + box.left;
      region.set(ink.values.subarray(start, start + box.width), y * box.width);
    }
    const scale = preparation.box_side / Math.max(box.width, box.height);
    const width = Math.max(1, roundHalfEven(box.width * scale));
    const height = Math.max(1, roundHalfEven(box.height * scale));
    const digit = resizeLanczos({ values: region, width: box.width, height: box.height }, width, height);
    const values = digit.values.map((value) => Math.min(Math.max(value, 0), 1));
    const strongest = values.reduce((a, b) => Math.max(a, b));
    return { values: values.map((value) => value / strongest), width, height };
  }

  // numpy's pairwise summation (what ndarray.sum does over a contiguous array), so that the centre of mass
  // rounds as in Python; `round` is f32 for a float32 array and the identity for a float64 one.
  function pairwiseSum(values, start, count, round) {
    if (count < 8) {
      let sum = 0;
      for (let i = start; i < start + count; i++) sum = round(sum + values[i]);
      return sum;
    }
    if (count <= 128) {
      const partial = Array.from(values.subarray(start, start + 8));
      let i = 8;
      for (; i < count - (count % 8); i += 8) {
        for (let j = 0; j < 8; j++) partial[j] = round(partial[j] + values[start + i + j]);
      }
      const [a, b, c, d, e, f, g, h] = partial;
      let sum = round(round(round(a + b) + round(c + d)) + round(round(e + f) + round(g + h)));
      for (; i < count; i++) sum = round(sum + values[start + i]);
      return sum;
    }
    const half = Math.floor(count / 2) - (Math.floor(count / 2) % 8);
    return round(pairwiseSum(values, start, half, round) + pairwiseSum(values, start + half, count - half, round));
  }

  // centre_of_mass(): row and column of the ink's centre of mass (index-weighted sums in float64, the mass
  // in float32, as numpy computes them).
  function centreOfMass({ values, width, height }) {
    const byRow = new Float64Array(values.length);
    const byColumn = new Float64Array(values.length);
    for (let i = 0; i < values.length; i++) {
      byRow[i] = Math.floor(i / width) * values[i];
      byColumn[i] = (i % width) * values[i];
    }
    const mass = pairwiseSum(values, 0, values.length, f32);
    const sum = (array) => pairwiseSum(array, 0, array.length, (x) => x);
    return { row: sum(byRow) / mass, column: sum(byColumn) / mass };
  }

  // marks_gap(): the widest gap (in pixels) left when the field's marks are joined nearest first. Marks are the
  // 8-connected groups of pixels of at least mark_level holding at least mark_share of those pixels; squared
  // distances between pixel centres are whole numbers, so both sides find the same gaps.
  function marksGap(field, preparation) {
    const level = f32(preparation.mark_level);
    const seen = new Uint8Array(field.length);
    const groups = [];
    for (let start = 0; start < field.length; start++) {
      if (field[start] < level || seen[start]) continue;
      const group = [start];
      seen[start] = 1;
      for (let k = 0; k < group.length; k++) {
        const y = Math.floor(group[k] / SIDE);
        const x = group[k] % SIDE;
        for (let ny = Math.max(y - 1, 0); ny <= Math.min(y + 1, SIDE - 1); ny++) {
          for (let nx = Math.max(x - 1, 0); nx <= Math.min(x + 1, SIDE - 1); nx++) {
            const j = ny * SIDE + nx;
            if (field[j] >= level && !seen[j]) {
              seen[j] = 1;
              group.push(j);
            }
          }
        }
      }
      groups.push(group);
    }
    const total = groups.reduce((sum, group) => sum + group.length, 0);
    const rest = groups.filter((group) => group.length >= preparation.mark_share * total)
      .sort((a, b) => b.length - a.length);
    const gap = (a, b) => {
      let nearest = Infinity;
      for (const i of a) {
        for (const j of b) {
          const dy = Math.floor(i / SIDE) - Math.floor(j / SIDE);
          const dx = (i % SIDE) - (j % SIDE);
          nearest = Math.min(nearest, dy * dy + dx * dx);
        }
      }
      return nearest;
    };
    const joined = rest.splice(0, 1);
    let widest = 0;
    while (rest.length) { // Prim's minimum spanning tree, from the largest mark
      const gaps = rest.map((mark) => Math.min(...joined.map((other) => gap(other, mark))));
      const nearest = gaps.indexOf(Math.min(...gaps));
      widest = Math.max(widest, gaps[nearest]);
      joined.push(...rest.splice(nearest, 1));
    }
    return Math.sqrt(widest);
  }

  // check_field(): why a prepared field holds no digit ("ink" or "marks"), or null.
  function checkField(field, preparation) {
    const level = f32(preparation.mark_level);
    if (field.filter((value) => value >= level).length / field.length > preparation.max_ink) return "ink";
    return marksGap(field, preparation) > preparation.far_apart ? "marks" : null;
  }

  // to_mnist(): the digit placed in the 28x28 field with its centre of mass at (centre, centre), shifted by
  // whole pixels and kept inside the field, then checked; returned as grey levels 0..255 with the reason it
  // holds no digit, if any.
  function prepare(imageData, preparation) {
    const ink = inkOf(greyscale(imageData), preparation);
    if (ink === null) return { pixels: null, problem: "blank" };
    if (onEveryEdge(ink)) return { pixels: null, problem: "edges" };
    const digit = fitBox(ink, preparation);
    const { row, column } = centreOfMass(digit);
    const place = (centre, size) => Math.min(Math.max(Math.floor(preparation.centre - centre + 0.5), 0), SIDE - size);
    const top = place(row, digit.height);
    const left = place(column, digit.width);
    const field = new Float32Array(SIDE * SIDE);
    for (let y = 0; y < digit.height; y++) {
      field.set(digit.values.subarray(y * digit.width, (y + 1) * digit.width), (top + y) * SIDE + left);
    }
    return { pixels: field.map((value) => value * 255), problem: checkField(field, preparation) };
  }

  // --- The pad -----------------------------------------------------------------------------------------

  // An element with the pad's class for its role and, when given one, the id for that role.
  function element(document, tag, role, ids, style) {
    const node = document.createElement(tag);
    node.className = "digit-pad-" + role;
    if (ids[role]) node.id = ids[role];
    Object.assign(node.style, style);
    return node;
  }

  function createCanvas(document, ids) {
    const canvas = element(document, "canvas", "canvas", ids, {
      width: CANVAS_SIDE + "px", maxWidth: "100%", height: "auto", aspectRatio: "1",
      border: "1px solid #888", borderRadius: "4px", cursor: "crosshair",
      touchAction: "none", // the pointer draws instead of scrolling or zooming the page
      userSelect: "none",
    });
    canvas.width = canvas.height = CANVAS_SIDE;
    canvas.setAttribute("aria-label", "Drawing pad: draw a digit");
    return canvas;
  }

  function createPreview(document, ids) {
    const preview = element(document, "canvas", "preview", ids, {
      width: SIDE * PREVIEW_SCALE + "px", height: SIDE * PREVIEW_SCALE + "px",
      imageRendering: "pixelated", border: "1px solid #888", background: "#000",
    });
    preview.width = preview.height = SIDE;
    preview.title = "What the model sees: 28x28 pixels";
    return preview;
  }

  // Ten rows: the digit, a bar as long as its probability, and the probability in per cent.
  function createBars(document, ids) {
    const bars = element(document, "div", "bars", ids, {
      display: "grid", gridTemplateColumns: "1.2em 160px 4em", gap: "2px 6px", alignItems: "center",
      fontFamily: "sans-serif", fontSize: "13px",
    });
    const rows = [];
    for (let digit = 0; digit < 10; digit++) {
      const label = document.createElement("span");
      label.textContent = String(digit);
      const track = document.createElement("div");
      Object.assign(track.style, { height: "12px", background: "#eee", borderRadius: "2px" });
      const fill = document.createElement("div");
      Object.assign(fill.style, { height: "100%", width: "0%", background: "#4c72b0", borderRadius: "2px" });
      const value = document.createElement("span");
      value.style.textAlign = "right";
      track.append(fill);
      bars.append(label, track, value);
      rows.push({ label, fill, value });
    }
    return { bars, rows };
  }

  function column(document, style, children) {
    const node = document.createElement("div");
    Object.assign(node.style, { display: "flex", flexDirection: "column", gap: "6px", ...style });
    node.append(...children);
    return node;
  }

  // The verdict under the prediction: empty when sure, "unsure: 4 or 9", or why nothing was predicted.
  function createVerdict(document, ids) {
    const verdict = element(document, "div", "verdict", ids, {
      fontFamily: "sans-serif", fontSize: "13px", minHeight: "1.3em", width: "10em", textAlign: "center",
    });
    verdict.setAttribute("role", "status");
    return verdict;
  }

  // The toggle that overlays, on the 28x28 image, what pushed the model towards its digit.
  function createToggle(document, ids) {
    const label = element(document, "label", "overlay-label", {}, { fontFamily: "sans-serif", fontSize: "13px" });
    const box = element(document, "input", "overlay", ids, { marginRight: "4px" });
    box.type = "checkbox";
    label.append(box, "What it looks at");
    label.title = "Red: pixels that pushed the model towards its digit; blue: away from it (gradient times input)";
    return { label, box };
  }

  // Build the pad inside `root`. `ids` names the elements' ids by role (canvas, clear, preview, bars,
  // prediction, verdict, overlay); the callbacks get the pad: onDraw while a stroke is drawn (at most once per
  // frame), onStrokeEnd when it ends, onClear after Clear, onOverlay when the overlay is turned on or off
  // (without onOverlay there is no toggle).
  function mount(root, { ids = {}, onDraw, onStrokeEnd, onClear, onOverlay } = {}) {
    const document = root.ownerDocument;
    const canvas = createCanvas(document, ids);
    const context = canvas.getContext("2d", { willReadFrequently: true }); // read back after every stroke
    const clearButton = element(document, "button", "clear", ids, { alignSelf: "flex-start" });
    clearButton.type = "button";
    clearButton.textContent = "Clear";
    const preview = createPreview(document, ids);
    const prediction = element(document, "output", "prediction", ids, {
      fontFamily: "sans-serif", fontSize: "40px", fontWeight: "bold", minHeight: "1.2em",
    });
    const verdict = createVerdict(document, ids);
    const toggle = onOverlay ? createToggle(document, ids) : null;
    const { bars, rows } = createBars(document, ids);
    root.append(column(document, { flexDirection: "row", flexWrap: "wrap", gap: "16px", alignItems: "flex-start" }, [
      column(document, {}, [canvas, clearButton]),
      column(document, { alignItems: "center" }, [preview, ...(toggle ? [toggle.label] : []), prediction, verdict]),
      bars,
    ]));

    const pad = {
      canvas,
      imageData: () => context.getImageData(0, 0, canvas.width, canvas.height),
      overlay: () => Boolean(toggle && toggle.box.checked),
      clear() {
        context.save(); // keep the ink's colour for the next stroke
        context.fillStyle = PAPER;
        context.fillRect(0, 0, canvas.width, canvas.height);
        context.restore();
        pad.show({});
      },
      show({ pixels = null, probabilities = null, verdict: said = null, saliency = null }) {
        drawPreview(preview, pixels, saliency);
        showProbabilities(rows, prediction, probabilities, said);
        showVerdict(verdict, prediction, said);
      },
    };
    context.lineCap = context.lineJoin = "round";
    context.lineWidth = STROKE_WIDTH;
    context.strokeStyle = context.fillStyle = INK;
    pad.clear();
    listenToPointer(canvas, context, {
      onDraw: () => onDraw && onDraw(pad),
      onStrokeEnd: () => onStrokeEnd && onStrokeEnd(pad),
    });
    clearButton.addEventListener("click", () => {
      pad.clear();
      if (onClear) onClear(pad);
    });
    if (toggle) toggle.box.addEventListener("change", () => onOverlay(pad));
    return pad;
  }

  // Draw with one pointer at a time (mouse, touch or pen), captured so that a stroke leaving the canvas
  // still ends; onDraw is throttled to one call per animation frame.
  function listenToPointer(canvas, context, { onDraw, onStrokeEnd }) {
    let stroke = null; // the drawing pointer's id and last point
    let frameRequested = false;
    const pointOf = (event) => {
      const rect = canvas.getBoundingClientRect();
      return {
        x: ((event.clientX - rect.left - canvas.clientLeft) * canvas.width) / canvas.clientWidth,
        y: ((event.clientY - rect.top - canvas.clientTop) * canvas.height) / canvas.clientHeight,
      };
    };
    const requestDraw = () => {
      if (frameRequested) return;
      frameRequested = true;
      canvas.ownerDocument.defaultView.requestAnimationFrame(() => {
        frameRequested = false;
        if (stroke) onDraw(); // a stroke that has ended is handled by onStrokeEnd
      });
    };
    canvas.addEventListener("pointerdown", (event) => {
      if (stroke || event.button !== 0) return; // the main button (or a touch, or a pen's tip) only
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      const point = pointOf(event);
      stroke = { id: event.pointerId, last: point };
      context.beginPath();
      context.arc(point.x, point.y, STROKE_WIDTH / 2, 0, 2 * Math.PI); // a tap leaves a dot
      context.fill();
      requestDraw();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!stroke || event.pointerId !== stroke.id) return;
      const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
      context.beginPath();
      context.moveTo(stroke.last.x, stroke.last.y);
      for (const each of coalesced.length ? coalesced : [event]) {
        stroke.last = pointOf(each);
        context.lineTo(stroke.last.x, stroke.last.y);
      }
      context.stroke();
      requestDraw();
    });
    const end = (event) => {
      if (!stroke || event.pointerId !== stroke.id) return;
      stroke = null;
      onStrokeEnd();
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  const TOWARDS = [230, 40, 40]; // red: pixels that pushed towards the digit
  const AWAY = [40, 110, 255]; // blue: pixels that pushed away from it

  // The 28x28 image the model sees (grey levels 0..255, light ink on black), or black for none; with a
  // saliency map, each pixel tinted red or blue as far as its share of the map's largest magnitude.
  function drawPreview(preview, pixels, saliency) {
    const context = preview.getContext("2d");
    const image = context.createImageData(SIDE, SIDE);
    const largest = saliency ? Math.max(...saliency.map(Math.abs)) || 1 : 1;
    for (let i = 0; i < SIDE * SIDE; i++) {
      const level = pixels ? Math.round(pixels[i]) : 0;
      const share = saliency ? Math.abs(saliency[i]) / largest : 0;
      const tint = saliency && saliency[i] > 0 ? TOWARDS : AWAY;
      const mix = (channel) => Math.round(level * (1 - share) + tint[channel] * share);
      image.data.set([mix(0), mix(1), mix(2), 255], 4 * i);
    }
    context.putImageData(image, 0, 0);
  }

  // The bars, and the most probable digit ("?" when unsure) with all ten probabilities in its
  // data-probabilities attribute and the digit in data-digit; null empties them.
  function showProbabilities(rows, prediction, probabilities, said) {
    const best = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
    rows.forEach((row, digit) => {
      const share = probabilities ? probabilities[digit] : 0;
      row.fill.style.width = (100 * share).toFixed(1) + "%";
      row.fill.style.background = digit === best ? "#dd8452" : "#4c72b0";
      row.label.style.fontWeight = digit === best ? "bold" : "normal";
      row.value.textContent = probabilities ? (100 * share).toFixed(1) + "%" : "";
    });
    const unsure = said && said.kind === "unsure";
    prediction.textContent = probabilities ? (unsure ? "?" : String(best)) : "";
    if (probabilities) {
      prediction.dataset.probabilities = JSON.stringify(Array.from(probabilities));
      prediction.dataset.digit = String(best);
    } else {
      delete prediction.dataset.probabilities;
      delete prediction.dataset.digit;
    }
  }

  // The verdict's text, coloured by its kind, and the kind in the prediction's data-verdict attribute.
  function showVerdict(verdict, prediction, said) {
    verdict.textContent = said ? said.text : "";
    verdict.style.color = said && said.kind === "problem" ? "#c44e52" : "#c77c02";
    if (said) prediction.dataset.verdict = said.kind;
    else delete prediction.dataset.verdict;
  }

  globalThis.DigitPad = { mount, prepare };
})();
