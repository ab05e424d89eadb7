/*
 * digits-tryit.js: the report's "draw a digit" section, run entirely in the browser with TensorFlow.js.
 *
 * A classic script, after tf-core, tf-backend-cpu, tf-layers and digits-pad.js. It reads the exported
 * models (digits.report.tryit.export) from <script type="application/json" id="digit-model">, rebuilds each
 * ensemble member with tf.layers (its last layer without the softmax, so that its logits are at hand), and
 * mounts the drawing pad in <div id="digit-tryit">. It defines
 *
 *   window.digitRecognizer = {
 *     ready,               // a Promise, resolved once the members are built and warmed up
 *     predict(pixels),     // 784 grey levels 0..255 (MNIST form, row-major) -> the ten calibrated probabilities
 *     read(pixels),        // -> {probabilities, verdict: {kind: "sure" | "unsure", text}}
 *     saliency(pixels),    // -> {digit, map}: gradient times input of the most probable digit's logit (784)
 *     prepare(imageData),  // a drawing's RGBA ImageData -> {pixels (or null), problem ("not a digit: ..." or null)}
 *   }
 *
 * The saliency map is of the raw logit, as digits.explain.saliency's: the temperature divides every logit by
 * the same T, so the calibrated map is the same picture once scaled to its largest value, as the page shows it.
 */
(function () {
  "use strict";

  const SIDE = 28;
  const TO_UNIT = Math.fround(1 / 255); // digits.data.to_images multiplies by float32(1 / 255)
  // Predict while drawing only while preparing and predicting take less than a frame at 30 frames a second
  // (on average: one slow call, such as the first, does not stop it), so that the ink keeps up with the
  // pointer; otherwise predict when each stroke ends.
  const LIVE_BUDGET_MS = 33;
  const WARM_UP_PREDICTIONS = 3;
  const IDS = {
    canvas: "digit-canvas", clear: "digit-clear", preview: "digit-preview", bars: "digit-bars",
    prediction: "digit-prediction", verdict: "digit-verdict", overlay: "digit-overlay",
  };
  const TINY = 2.2250738585072014e-308; // numpy's float64 tiny: the floor of a probability before its log

  // The tf.layers layer for each exported layer spec; padding "same" follows TensorFlow's rule in both.
  const LAYERS = {
    conv2d: (spec) => tf.layers.conv2d({
      filters: spec.filters, kernelSize: spec.kernel, strides: spec.stride, padding: spec.padding,
      useBias: spec.use_bias, activation: spec.activation,
    }),
    batch_norm: (spec) => tf.layers.batchNormalization({ axis: -1, epsilon: spec.epsilon }),
    relu: () => tf.layers.activation({ activation: "relu" }),
    max_pool: (spec) => tf.layers.maxPooling2d({ poolSize: spec.pool_size, strides: spec.stride, padding: spec.padding }),
    flatten: () => tf.layers.flatten(),
    global_average_pool: () => tf.layers.globalAveragePooling2d({}),
    dense: (spec) => tf.layers.dense({ units: spec.units, activation: spec.activation }),
  };

  // One exported weight array ({shape, data: base64 little-endian float32}) as a tensor.
  function decodeTensor({ shape, data }) {
    const bytes = Uint8Array.from(atob(data), (character) => character.charCodeAt(0));
    const view = new DataView(bytes.buffer);
    const values = new Float32Array(bytes.length / 4);
    for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(4 * i, true);
    return tf.tensor(values, shape, "float32");
  }

  // A member as tf.layers, its last layer giving logits: the softmax is applied in predict().
  function buildMember(architecture, weights) {
    const last = architecture[architecture.length - 1];
    if (last.type !== "dense" || last.activation !== "softmax") throw new Error("the exported model must end in a softmax");
    const model = tf.sequential();
    model.add(tf.layers.inputLayer({ inputShape: [SIDE, SIDE, 1] }));
    for (const spec of architecture) {
      if (!LAYERS[spec.type]) throw new Error("unknown layer type in the exported model: " + spec.type);
      model.add(LAYERS[spec.type](spec === last ? { ...spec, activation: "linear" } : spec));
    }
    // Layer by layer: the model's own setWeights takes all trainable weights first, not Keras' order.
    const tensors = weights.map(decodeTensor);
    let next = 0;
    for (const layer of model.layers) {
      layer.setWeights(tensors.slice(next, next + layer.weights.length)); // checks each shape
      next += layer.weights.length;
    }
    if (next !== tensors.length) throw new Error("the exported model has more weights than its layers");
    tf.dispose(tensors);
    return model;
  }

  // scale() of digits.calibration: p^(1/T), renormalised.
  function calibrate(probabilities, temperature) {
    const logs = probabilities.map((p) => Math.log(Math.max(p, TINY)) / temperature);
    const top = Math.max(...logs);
    const scaled = logs.map((value) => Math.exp(value - top));
    const total = scaled.reduce((a, b) => a + b, 0);
    return scaled.map((value) => Math.fround(value / total));
  }

  // verdict() of digits.calibration: sure at or above the threshold, else "unsure" naming the two most likely.
  function verdictOf(probabilities, threshold) {
    const order = probabilities.map((_, digit) => digit).sort((a, b) => probabilities[b] - probabilities[a] || a - b);
    if (probabilities[order[0]] >= threshold) return { kind: "sure", text: "" };
    return { kind: "unsure", text: `unsure: ${order[0]} or ${order[1]}` };
  }

  function createRecognizer(description) {
    const { temperature, threshold } = description.calibration;
    let members = null;
    const toInput = (pixels) => tf.tensor4d(Float32Array.from(pixels, (level) => level * TO_UNIT), [1, SIDE, SIDE, 1]);

    // The average of the members' probabilities, in float32 as numpy's mean of the stacked members, calibrated.
    function predict(pixels) {
      if (!members) throw new Error("the model is not loaded yet: wait for digitRecognizer.ready");
      const sum = new Float32Array(10);
      tf.tidy(() => {
        const images = toInput(pixels);
        for (const member of members) {
          tf.softmax(member.predict(images)).dataSync().forEach((probability, digit) => { sum[digit] += probability; });
        }
      });
      return calibrate(Array.from(sum, (total) => Math.fround(total / members.length)), temperature);
    }

    function read(pixels) {
      const probabilities = predict(pixels);
      return { probabilities, verdict: verdictOf(probabilities, threshold) };
    }

    // Gradient times input of the most probable digit's logit, the mean over the members.
    function saliency(pixels) {
      const probabilities = predict(pixels);
      const digit = probabilities.indexOf(Math.max(...probabilities));
      const sum = new Float64Array(SIDE * SIDE);
      tf.tidy(() => {
        const input = toInput(pixels);
        for (const member of members) {
          // The functional ops: the vendored bundle registers no chained ones (tensor.gather, tensor.mul).
          const logit = (x) => tf.sum(tf.gather(member.apply(x, { training: false }), [digit], 1));
          tf.mul(tf.grad(logit)(input), input).dataSync().forEach((value, i) => { sum[i] += value; });
        }
      });
      return { digit, map: Array.from(sum, (total) => total / members.length) };
    }

    function prepare(imageData) {
      const { pixels, problem } = DigitPad.prepare(imageData, description.preparation);
      return { pixels, problem: problem && description.preparation.reasons[problem] };
    }

    const ready = tf.setBackend("cpu").then((ok) => {
      if (!ok) throw new Error("TensorFlow.js could not start its CPU backend");
      members = description.members.map((weights) => buildMember(description.architecture, weights));
      // The first predictions allocate and let the JavaScript engine compile: make them before the user draws.
      for (let i = 0; i < WARM_UP_PREDICTIONS; i++) predict(new Float32Array(SIDE * SIDE));
    });
    return { ready, predict, read, saliency, prepare };
  }

  // Mount the pad and predict after each stroke, and while drawing when that is fast enough.
  function wirePage(recognizer) {
    const root = document.getElementById("digit-tryit");
    let loaded = false;
    let pending = false; // drawn on while the model loads
    let cost = Infinity; // the milliseconds preparing and predicting take: a running average
    const record = (start) => {
      const time = performance.now() - start;
      cost = cost === Infinity ? time : (cost + time) / 2;
    };
    // Prepare and check the drawing; read it when it is a digit, with what the model looks at when asked.
    const update = (drawn) => {
      if (!loaded) {
        pending = true; // a stroke drawn while the model loads is predicted once it has loaded
        return;
      }
      const start = performance.now();
      const { pixels, problem } = recognizer.prepare(drawn.imageData());
      if (problem) {
        drawn.show({ pixels, verdict: { kind: "problem", text: problem } });
        return;
      }
      const { probabilities, verdict } = recognizer.read(pixels);
      drawn.show({ pixels, probabilities, verdict, saliency: drawn.overlay() ? recognizer.saliency(pixels).map : null });
      record(start);
    };
    const onDraw = (drawn) => {
      if (cost < LIVE_BUDGET_MS) update(drawn);
    };
    const pad = DigitPad.mount(root, { ids: IDS, onDraw, onStrokeEnd: update, onClear: update, onOverlay: update });
    recognizer.ready.then(() => {
      loaded = true;
      const start = performance.now();
      recognizer.predict(new Float32Array(SIDE * SIDE));
      record(start);
      if (pending) update(pad); // an untouched pad says nothing; once drawn on or cleared, it is read
    }, (error) => {
      root.append("The model could not be loaded in this browser: " + error.message);
      throw error;
    });
  }

  function start() {
    const description = JSON.parse(document.getElementById("digit-model").textContent);
    window.digitRecognizer = createRecognizer(description);
    wirePage(window.digitRecognizer);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
