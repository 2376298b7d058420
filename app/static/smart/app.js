// /smart/app: the redirect back from the EHR's sign-in, then the intake itself: exchange the
// code (PKCE), read the chart, have carelevel pre-fill its Questionnaire ($populate), let the
// clinician confirm and complete it, evaluate it ($evaluate), show the determination and file
// the result in the EHR when the granted scopes allow it.
import {
  AppError,
  checkedToken,
  loadConfig,
  mayCreate,
  patientName,
  takeSignIn,
} from "./smart.js";
import { renderForm } from "./form.js";

const FHIR_JSON = "application/fhir+json";
const MAX_PAGES = 10; // of one chart search: enough for a screening, bounded for a large chart

const $ = (id) => document.getElementById(id);

function say(text) {
  $("status").textContent = text;
  $("status").hidden = !text;
}

async function exchangeCode(signIn, code) {
  if (!code) throw new AppError("The EHR sent no authorization code: launch the app again.");
  const body = new URLSearchParams({
    grant_type: "authorization_code",
    code,
    redirect_uri: signIn.redirectUri,
    client_id: signIn.clientId,
    code_verifier: signIn.verifier,
  });
  let response;
  try {
    response = await fetch(signIn.tokenEndpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body,
    });
  } catch {
    throw new AppError("The EHR's authorization server could not be reached.");
  }
  if (!response.ok) throw new AppError("The EHR refused the sign-in: launch the app again.");
  return checkedToken(await response.json());
}

async function ehrRead(iss, token, url) {
  const response = await fetch(url.startsWith(`${iss}/`) ? url : `${iss}/${url}`, {
    headers: { Accept: FHIR_JSON, Authorization: `Bearer ${token.accessToken}` },
  });
  if (!response.ok) throw new AppError("The patient's record could not be read from the EHR.");
  return response.json();
}

/** Every resource the chart searches find, each once (the EHR's own next links followed). */
async function readChart(iss, token, queries) {
  const found = new Map();
  for (const template of Object.values(queries)) {
    let next = template.replaceAll("{{context.patientId}}", encodeURIComponent(token.patient));
    for (let page = 0; next && page < MAX_PAGES; page += 1) {
      const result = await ehrRead(iss, token, next);
      const resources = result.resourceType === "Bundle" ? (result.entry || []).map((e) => e.resource) : [result];
      for (const resource of resources.filter(Boolean)) {
        found.set(`${resource.resourceType}/${resource.id}`, resource);
      }
      const link = (result.link || []).find((l) => l.relation === "next");
      next = link && link.url.startsWith(`${iss}/`) ? link.url : null;
    }
  }
  return [...found.values()];
}

async function carelevel(token, path, { body, accept = FHIR_JSON, headers = {} } = {}) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      Accept: accept,
      Authorization: `Bearer ${token.accessToken}`,
      ...(body === undefined ? {} : { "Content-Type": FHIR_JSON }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 || response.status === 403) {
    throw new AppError("carelevel does not accept this EHR's sign-in for screening.");
  }
  return response;
}

async function failure(response, what) {
  let detail = "";
  try {
    const outcome = await response.json();
    detail = (outcome.issue || []).map((issue) => issue.diagnostics).filter(Boolean).join("; ");
  } catch {
    detail = "";
  }
  return new AppError(`${what} (HTTP ${response.status})${detail ? `: ${detail}` : "."}`);
}

async function populate(token, questionnaire, patient, chart) {
  const parameters = {
    resourceType: "Parameters",
    parameter: [
      { name: "subject", valueReference: { reference: `Patient/${token.patient}` } },
      {
        name: "context",
        part: [
          { name: "name", valueString: "patient" },
          { name: "content", resource: patient },
        ],
      },
      {
        name: "context",
        part: [
          { name: "name", valueString: "chart" },
          {
            name: "content",
            resource: { resourceType: "Bundle", type: "collection", entry: chart.map((resource) => ({ resource })) },
          },
        ],
      },
    ],
  };
  const path = `/fhir/r4/Questionnaire/${encodeURIComponent(questionnaire.id)}/$populate`;
  const response = await carelevel(token, path, { body: parameters });
  if (!response.ok) throw await failure(response, "carelevel could not pre-fill the screening");
  const output = await response.json();
  const part = (name) => (output.parameter || []).find((p) => p.name === name);
  const populated = part("response") && part("response").resource;
  if (!populated) throw new AppError("carelevel's pre-filled screening is missing.");
  const issues = part("issues") && part("issues").resource;
  return { populated, issues: (issues && issues.issue) || [] };
}

function showPatient(patient) {
  const banner = $("patient");
  const facts = [patient.gender, patient.birthDate && `born ${patient.birthDate}`].filter(Boolean);
  banner.textContent = `${patientName(patient)}${facts.length ? ` (${facts.join(", ")})` : ""}`;
  banner.hidden = false;
}

function showIssues(issues) {
  const list = $("issues");
  list.replaceChildren(
    ...issues.filter((issue) => issue.diagnostics).map((issue) => {
      const entry = document.createElement("li");
      entry.textContent = issue.diagnostics;
      return entry;
    }),
  );
  list.hidden = list.children.length === 0;
}

async function evaluate(token, form, populated) {
  const response = {
    resourceType: "QuestionnaireResponse",
    questionnaire: populated.questionnaire,
    status: "completed",
    subject: { reference: `Patient/${token.patient}` },
    authored: new Date().toISOString(),
    item: form.items(),
  };
  const answered = await carelevel(token, "/fhir/r4/QuestionnaireResponse/$evaluate", {
    body: response,
    headers: { "Idempotency-Key": crypto.randomUUID() },
  });
  if (!answered.ok) throw await failure(answered, "carelevel could not evaluate the screening");
  return answered.json();
}

// The determination as the result's level-of-care Observation tells it (its narrative: level,
// urgency, IOP verdict, then the summary): the $evaluate answer holds it, and a token bound to
// the patient reads nothing back from carelevel's own API. Only the text is taken.
function showDetermination(bundle) {
  const level = (bundle.entry || [])
    .map((entry) => entry.resource || {})
    .find((resource) =>
      resource.resourceType === "Observation" &&
      ((resource.code || {}).coding || []).some((coding) => coding.code === "level-of-care-recommendation"),
    );
  const div = level && level.text && level.text.div;
  if (!div) throw new AppError("carelevel's determination is missing from its answer.");
  const narrative = new DOMParser().parseFromString(div, "text/html");
  const lines = [...narrative.querySelectorAll("p")].map((paragraph) =>
    paragraph.querySelector("b") ? paragraph.textContent : `Summary: ${paragraph.textContent}`,
  );
  $("readable").textContent = lines.join("\n");
  $("result").hidden = false;
}

function filedOutcome(result) {
  const list = $("filed");
  list.replaceChildren(
    ...(result.entry || []).map((entry) => {
      const item = document.createElement("li");
      const answer = entry.response || {};
      item.textContent = [answer.status, answer.location].filter(Boolean).join(" ");
      return item;
    }),
  );
}

async function fileInEhr(iss, token, bundle) {
  const types = [...new Set((bundle.entry || []).map((entry) => entry.resource && entry.resource.resourceType))];
  const refused = types.filter((type) => !mayCreate(token.scope, type));
  if (bundle.type !== "transaction") {
    $("writeback").textContent = "carelevel's result is not a transaction the EHR can file: nothing was filed.";
    return;
  }
  if (refused.length) {
    $("writeback").textContent = `Write-back is not allowed: the EHR granted no permission to create ${refused.join(", ")}. Nothing was filed.`;
    return;
  }
  $("writeback").textContent = "Filing the result in the EHR…";
  const response = await fetch(iss, {
    method: "POST",
    headers: { Accept: FHIR_JSON, "Content-Type": FHIR_JSON, Authorization: `Bearer ${token.accessToken}` },
    body: JSON.stringify(bundle),
  });
  if (!response.ok) {
    $("writeback").textContent = `The EHR refused the result (HTTP ${response.status}): nothing was filed.`;
    return;
  }
  filedOutcome(await response.json());
  $("writeback").textContent = "Filed in the EHR.";
}

async function submitted(event, token, form, populated, iss) {
  event.preventDefault();
  const missing = form.missing();
  if (missing.length) {
    $("missing").textContent = `${missing.length} required question(s) still need an answer.`;
    $("missing").hidden = false;
    missing[0].scrollIntoView({ block: "center" });
    missing[0].querySelector("input, textarea").focus();
    return;
  }
  $("missing").hidden = true;
  $("evaluate").disabled = true;
  say("Evaluating…");
  try {
    const bundle = await evaluate(token, form, populated);
    showDetermination(bundle);
    $("intake").hidden = true;
    say("");
    await fileInEhr(iss, token, bundle);
  } catch (error) {
    $("evaluate").disabled = false;
    show(error);
  }
}

async function start() {
  const params = new URLSearchParams(window.location.search);
  // The code and state leave the address bar (and the history) at once.
  window.history.replaceState(null, "", window.location.pathname);
  const signIn = takeSignIn(params.get("state"));
  if (params.get("error")) throw new AppError("The EHR did not authorise the app: launch it again.");
  const token = await exchangeCode(signIn, params.get("code"));
  const config = await loadConfig();
  say("Reading the patient's record…");
  const patient = await ehrRead(signIn.iss, token, `Patient/${encodeURIComponent(token.patient)}`);
  showPatient(patient);
  const chart = await readChart(signIn.iss, token, config.chart_queries);
  const found = await carelevel(token, "/fhir/r4/Questionnaire");
  if (!found.ok) throw await failure(found, "carelevel's Questionnaire could not be read");
  const questionnaire = ((await found.json()).entry || [])[0]?.resource;
  if (!questionnaire) throw new AppError("carelevel has no Questionnaire for this organisation.");
  say("Pre-filling the screening from the chart…");
  const { populated, issues } = await populate(token, questionnaire, patient, chart);
  populated.questionnaire ||= `${questionnaire.url}|${questionnaire.version}`;
  $("intake-title").textContent = questionnaire.title || "Screening";
  showIssues(issues);
  const form = renderForm($("questions"), questionnaire, populated, config.populated_from);
  $("intake-form").addEventListener("submit", (event) =>
    submitted(event, token, form, populated, signIn.iss),
  );
  $("intake").hidden = false;
  say("");
}

function show(error) {
  say("");
  $("error").textContent =
    error instanceof AppError ? error.message : "Something went wrong: launch the app again.";
  $("error").hidden = false;
}

start().catch(show);
