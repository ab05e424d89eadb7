/*
 * digits-tryit.js: the report's "draw a digit" section, run entirely in the browser with TensorFlow.js.
 *
 * A classic script, after tf-core, tf-backend-cpu, tf-layers and digits-pad.js. It reads the exported
 * models (digits.tryit.export) from <script type="application/json" id="digit-model">, rebuilds each ensemble
 * member with tf.layers, and mounts the drawing pad in <div id="digit-tryit">. It defines
 *
 *   window.digitRecognizer = {
 *     ready,               // a Promise, resolved once the members are built and warmed up
 *     predict(pixels),     // 784 grey levels 0..255 (MNIST form, row-major) -> the ten probabilities
 *     prepare(imageData),  // a drawing's RGBA ImageData -> Float32Array(784) in MNIST form, or null if blank
 *   }
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
    prediction: "digit-prediction",
  };

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

  function buildMember(architecture, weights) {
    const model = tf.sequential();
    model.add(tf.layers.inputLayer({ inputShape: [SIDE, SIDE, 1] }));
    for (const spec of architecture) {
      if (!LAYERS[spec.type]) throw new Error("unknown layer type in the exported model: " + spec.type);
      model.add(LAYERS[spec.type](spec));
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

  function createRecognizer(description) {
    let members = null;

    // The average of the members' probabilities, in float32 as numpy's mean of the stacked members.
    function predict(pixels) {
      if (!members) throw new Error("the model is not loaded yet: wait for digitRecognizer.ready");
      const input = Float32Array.from(pixels, (level) => level * TO_UNIT);
      const sum = new Float32Array(10);
      tf.tidy(() => {
        const images = tf.tensor4d(input, [1, SIDE, SIDE, 1]);
        for (const member of members) {
          member.predict(images).dataSync().forEach((probability, digit) => { sum[digit] += probability; });
        }
      });
      return Array.from(sum, (total) => Math.fround(total / members.length));
    }

    const ready = tf.setBackend("cpu").then((ok) => {
      if (!ok) throw new Error("TensorFlow.js could not start its CPU backend");
      members = description.members.map((weights) => buildMember(description.architecture, weights));
      // The first predictions allocate and let the JavaScript engine compile: make them before the user draws.
      for (let i = 0; i < WARM_UP_PREDICTIONS; i++) predict(new Float32Array(SIDE * SIDE));
    });
    return { ready, predict, prepare: (imageData) => DigitPad.prepare(imageData, description.preparation) };
  }

  // Mount the pad and predict after each stroke, and while drawing when that is fast enough.
  function wirePage(recognizer) {
    const root = document.getElementById("digit-tryit");
    let loaded = false;
    let cost = Infinity; // the milliseconds preparing and predicting take: a running average
    const record = (start) => {
      const time = performance.now() - start;
      cost = cost === Infinity ? time : (cost + time) / 2;
    };
    const update = (drawn) => {
      if (!loaded) return; // a stroke drawn while the model loads is predicted once it has loaded
      const start = performance.now();
      const pixels = recognizer.prepare(drawn.imageData());
      drawn.showPreview(pixels);
      drawn.showProbabilities(pixels && recognizer.predict(pixels));
      if (pixels) record(start);
    };
    const onDraw = (drawn) => {
      if (cost < LIVE_BUDGET_MS) update(drawn);
    };
    const pad = DigitPad.mount(root, { ids: IDS, onDraw, onStrokeEnd: update });
    recognizer.ready.then(() => {
      loaded = true;
      const start = performance.now();
      recognizer.predict(new Float32Array(SIDE * SIDE));
      record(start);
      update(pad);
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
