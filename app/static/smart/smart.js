// What the launch page and the app share: carelevel's configuration of the EHRs, PKCE, the
// sign-in state kept between them, and the pure rules the app applies to what EHRs send.

export const STATE_PREFIX = "carelevel.smart.";
// Sign-in states older than this are not honoured (the authorization code is short-lived too).
export const STATE_MAX_AGE_MS = 10 * 60 * 1000;
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** A failure to show the person as it is (its message says what to do). */
export class AppError extends Error {}

export async function loadConfig() {
  const response = await fetch("/smart/config", { headers: { Accept: "application/json" } });
  if (!response.ok) throw new AppError("The app's configuration could not be read.");
  return response.json();
}

/** The configured EHR of `iss` (its FHIR base), or an error: the app signs in nowhere else. */
export function configuredEhr(config, iss) {
  const wanted = (iss || "").replace(/\/+$/, "");
  const found = config.apps.find((app) => app.iss === wanted);
  if (!found) throw new AppError("This app is not configured for that EHR.");
  return found;
}

export function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function randomToken(size) {
  const bytes = new Uint8Array(size);
  crypto.getRandomValues(bytes);
  return base64url(bytes);
}

/** RFC 7636 S256: BASE64URL(SHA256(ASCII(code_verifier))). */
export async function codeChallenge(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** `url` when it is an endpoint at one of the EHR's configured origins. */
export function endpointOf(ehr, url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new AppError("The EHR's SMART configuration names an endpoint that is not a URL.");
  }
  if (!ehr.origins.includes(parsed.origin)) {
    throw new AppError(
      "The EHR's SMART configuration names an authorization server this app is not " +
        "configured for, so it will not sign in there.",
    );
  }
  return parsed.href;
}

/** The scopes to ask for: `launch` only in an EHR launch (standalone asks `launch/patient`). */
export function scopeFor(scope, ehrLaunch) {
  const tokens = scope.split(" ");
  return (ehrLaunch ? tokens : tokens.filter((token) => token !== "launch")).join(" ");
}

/** Keep what the redirect back needs, under the state sent to the authorization server. */
export function rememberSignIn(state, signIn) {
  sessionStorage.setItem(STATE_PREFIX + state, JSON.stringify({ ...signIn, at: Date.now() }));
}

/** The sign-in started here under `state`, forgotten as it is taken (a state is used once). */
export function takeSignIn(state, now = Date.now()) {
  const key = STATE_PREFIX + (state || "");
  const saved = state ? sessionStorage.getItem(key) : null;
  for (let index = sessionStorage.length - 1; index >= 0; index -= 1) {
    const name = sessionStorage.key(index);
    if (name && name.startsWith(STATE_PREFIX)) sessionStorage.removeItem(name);
  }
  const signIn = saved ? JSON.parse(saved) : null;
  if (!signIn || now - signIn.at > STATE_MAX_AGE_MS) {
    throw new AppError(
      "This sign-in was not started here or has expired (its state does not match): " +
        "launch the app again.",
    );
  }
  return signIn;
}

/** The token response's fields the app relies on, checked. */
export function checkedToken(body) {
  if (!body || typeof body.access_token !== "string" || !body.access_token) {
    throw new AppError("The EHR's token response has no access token.");
  }
  if (typeof body.token_type !== "string" || body.token_type.toLowerCase() !== "bearer") {
    throw new AppError("The EHR's token response is not a bearer token.");
  }
  if (typeof body.patient !== "string" || !FHIR_ID.test(body.patient)) {
    throw new AppError("The EHR named no patient: launch the app from a patient's chart.");
  }
  return { accessToken: body.access_token, patient: body.patient, scope: body.scope || "" };
}

/**
 * Whether the granted `scope` lets the app create resources of `type` in the EHR: SMART 2
 * `patient|user/<type or *>.c…` (constrained scopes, `?…`, are not assumed to fit) or
 * SMART 1 `.write` and `.*`.
 */
export function mayCreate(scope, type) {
  return scope.split(" ").some((token) => {
    const match = /^(patient|user)\/([A-Za-z]+|\*)\.([a-z*]+)$/.exec(token);
    if (!match || (match[2] !== "*" && match[2] !== type)) return false;
    const permissions = match[3];
    if (permissions === "write" || permissions === "*") return true;
    return /^c?r?u?d?s?$/.test(permissions) && permissions.includes("c");
  });
}

/** A patient's name as the EHR wrote it. */
export function patientName(patient) {
  const name = (patient.name || [])[0];
  if (!name) return "Unnamed patient";
  if (name.text) return name.text;
  return [...(name.given || []), name.family].filter(Boolean).join(" ") || "Unnamed patient";
}
