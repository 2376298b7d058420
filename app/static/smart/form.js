// A form for carelevel's Questionnaire (FHIR R4): groups, choice (codings), boolean, integer,
// decimal, string, text and date items, enableWhen, and the answers a QuestionnaireResponse
// pre-fills, marked "from the chart" when $populate took them from the patient's record.

function element(tag, attributes = {}, text = null) {
  const made = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, value);
  if (text !== null) made.textContent = text;
  return made;
}

function extensionValue(item, url) {
  const found = (item.extension || []).find((extension) => extension.url === url);
  if (!found) return undefined;
  return found.valueInteger ?? found.valueDecimal ?? found.valueDate;
}

/** Whether $populate marked the item (or an answer) with `mark`, the extension it uses. */
function hasFromChartMark(responseItem, mark) {
  const marked = (holder) => (holder.extension || []).some((extension) => extension.url === mark);
  return marked(responseItem) || (responseItem.answer || []).some(marked);
}

/** linkId → the response's item, for every item at any depth. */
function responseItems(items, found = new Map()) {
  for (const item of items || []) {
    found.set(item.linkId, item);
    responseItems(item.item, found);
    for (const answer of item.answer || []) responseItems(answer.item, found);
  }
  return found;
}

function sameCoding(a, b) {
  return Boolean(a && b) && a.code === b.code && (a.system || "") === (b.system || "");
}

function optionValue(option) {
  const [name] = Object.keys(option).filter((key) => key.startsWith("value"));
  return { [name]: option[name] };
}

function optionLabel(option) {
  if (option.valueCoding) return option.valueCoding.display || option.valueCoding.code;
  const [value] = Object.values(optionValue(option));
  return String(value);
}

function matchesOption(answer, option) {
  if (option.valueCoding) return sameCoding(answer.valueCoding, option.valueCoding);
  const [[name, value]] = Object.entries(optionValue(option));
  return answer[name] === value;
}

/** An answer as one string (`system|code` for a coding): what a control stands for. */
function answerKey(answer) {
  const [[name, value]] = Object.entries(answer);
  return name === "valueCoding" ? `${value.system || ""}|${value.code}` : String(value);
}

let controlCount = 0;

function choiceControls(question, container, initial) {
  const kind = question.repeats ? "checkbox" : "radio";
  const options = question.type === "boolean" ? [{ valueBoolean: true }, { valueBoolean: false }] : question.answerOption || [];
  options.forEach((option, index) => {
    const id = `q${(controlCount += 1)}`;
    const input = element("input", { type: kind, id, name: question.linkId, value: String(index) });
    input.dataset.answer = answerKey(optionValue(option));
    if (question.required && kind === "radio") input.required = true;
    input.checked = initial.some((answer) => matchesOption(answer, option));
    const label = element("label", { class: "option", for: id });
    label.append(input, ` ${question.type === "boolean" ? (index === 0 ? "Yes" : "No") : optionLabel(option)}`);
    container.append(label);
  });
  return () =>
    [...container.querySelectorAll(`input[name="${CSS.escape(question.linkId)}"]`)]
      .filter((input) => input.checked)
      .map((input) => optionValue(options[Number(input.value)]));
}

const FIELD_TYPES = {
  integer: { type: "number", step: "1", read: (text) => ({ valueInteger: Number.parseInt(text, 10) }), initial: (a) => a.valueInteger },
  decimal: { type: "number", step: "any", read: (text) => ({ valueDecimal: Number.parseFloat(text) }), initial: (a) => a.valueDecimal },
  date: { type: "date", read: (text) => ({ valueDate: text }), initial: (a) => a.valueDate },
  string: { type: "text", read: (text) => ({ valueString: text }), initial: (a) => a.valueString },
};

function fieldControl(question, container, initial) {
  const field = FIELD_TYPES[question.type] || FIELD_TYPES.string;
  const id = `q${(controlCount += 1)}`;
  const input =
    question.type === "text"
      ? element("textarea", { id, name: question.linkId, rows: "3" })
      : element("input", { id, name: question.linkId, type: field.type });
  if (field.step) input.setAttribute("step", field.step);
  for (const bound of ["minValue", "maxValue"]) {
    const value = extensionValue(question, `http://hl7.org/fhir/StructureDefinition/${bound}`);
    if (value !== undefined) input.setAttribute(bound === "minValue" ? "min" : "max", String(value));
  }
  if (question.required) input.required = true;
  const value = initial.length ? field.initial(initial[0]) : undefined;
  if (value !== undefined && value !== null) input.value = String(value);
  container.querySelector(".question-text").setAttribute("for", id);
  container.append(input);
  return () => (input.value.trim() === "" ? [] : [field.read(input.value.trim())]);
}

function questionText(item) {
  return [item.prefix, item.text || item.linkId].filter(Boolean).join(". ");
}

/**
 * Renders `questionnaire` into `host` with the answers of `response`; those carrying the
 * extension `mark` (config.populated_from) are shown as taken from the chart.
 */
export function renderForm(host, questionnaire, response, mark) {
  const prefilled = responseItems(response.item);
  const readers = new Map(); // linkId → () => answers
  const conditional = []; // [wrapper, item]

  function renderItem(item, parent) {
    const given = prefilled.get(item.linkId);
    const initial = (given && given.answer) || [];
    const isGroup = item.type === "group";
    const choice = item.type === "choice" || item.type === "boolean";
    const wrapper = element(isGroup || choice ? "fieldset" : "div", {
      class: isGroup ? "group" : "question",
      "data-link-id": item.linkId,
    });
    const caption = element(isGroup || choice ? "legend" : "label", { class: "question-text" }, questionText(item));
    if (item.required && !isGroup) caption.append(element("span", { class: "required-mark", "aria-hidden": "true" }, "*"));
    wrapper.append(caption);
    if (!isGroup && given && initial.length && hasFromChartMark(given, mark)) {
      wrapper.classList.add("prefilled");
      caption.append(element("span", { class: "from-chart" }, "from the chart"));
      wrapper.addEventListener("change", () => {
        caption.querySelector(".from-chart").textContent = "changed (was from the chart)";
      });
    }
    if (item.type === "display") {
      wrapper.classList.add("display");
    } else if (choice) {
      readers.set(item.linkId, choiceControls(item, wrapper, initial));
    } else if (!isGroup) {
      readers.set(item.linkId, fieldControl(item, wrapper, initial));
    }
    for (const child of item.item || []) renderItem(child, wrapper);
    if (item.enableWhen && item.enableWhen.length) conditional.push([wrapper, item]);
    parent.append(wrapper);
  }

  host.replaceChildren();
  for (const item of questionnaire.item || []) renderItem(item, host);

  function answersOf(linkId) {
    const read = readers.get(linkId);
    return read ? read() : [];
  }

  function holds(condition) {
    const answers = answersOf(condition.question);
    if (condition.operator === "exists") return (answers.length > 0) === condition.answerBoolean;
    const [name] = Object.keys(condition).filter((key) => key.startsWith("answer"));
    const expected = condition[name];
    const valueName = `value${name.slice("answer".length)}`;
    const equal = answers.some((answer) =>
      name === "answerCoding" ? sameCoding(answer.valueCoding, expected) : answer[valueName] === expected,
    );
    if (condition.operator === "=") return equal;
    if (condition.operator === "!=") return answers.length > 0 && !equal;
    return false; // other operators are not used by carelevel's Questionnaire
  }

  function refresh() {
    // In document order, so that an item hidden by its own condition hides what depends on it.
    for (const [wrapper, item] of conditional) {
      const results = item.enableWhen.map(holds);
      const enabled = item.enableBehavior === "any" ? results.some(Boolean) : results.every(Boolean);
      const hiddenAbove = wrapper.parentElement && wrapper.parentElement.closest("[hidden]");
      wrapper.hidden = !enabled || Boolean(hiddenAbove);
      if (wrapper.tagName === "FIELDSET") wrapper.disabled = wrapper.hidden;
      for (const control of wrapper.querySelectorAll("input, textarea")) {
        if (wrapper.hidden) control.disabled = true;
        else if (!control.closest("fieldset[disabled]")) control.disabled = false;
      }
    }
  }

  host.addEventListener("change", refresh);
  host.addEventListener("input", refresh);
  refresh();

  function collect(items) {
    const collected = [];
    for (const item of items || []) {
      const wrapper = host.querySelector(`[data-link-id="${CSS.escape(item.linkId)}"]`);
      if (!wrapper || wrapper.hidden) continue;
      if (item.type === "group") {
        const children = collect(item.item);
        if (children.length) collected.push({ linkId: item.linkId, item: children });
        continue;
      }
      const answer = answersOf(item.linkId);
      if (!answer.length) continue;
      // A question's own sub-questions belong to its answer (FHIR R4 QuestionnaireResponse).
      const nested = collect(item.item);
      if (nested.length) answer[0].item = nested;
      collected.push({ linkId: item.linkId, answer });
    }
    return collected;
  }

  /** The required, enabled questions with no answer: their texts. */
  function missing() {
    const unanswered = [];
    const walk = (items) => {
      for (const item of items || []) {
        const wrapper = host.querySelector(`[data-link-id="${CSS.escape(item.linkId)}"]`);
        if (!wrapper || wrapper.hidden) continue;
        if (item.required && item.type !== "group" && !answersOf(item.linkId).length) unanswered.push(wrapper);
        walk(item.item);
      }
    };
    walk(questionnaire.item);
    return unanswered;
  }

  return { items: () => collect(questionnaire.item), missing };
}
