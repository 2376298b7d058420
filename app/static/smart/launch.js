// /smart/launch: discover the EHR's endpoints and send the browser to sign in (SMART App
// Launch 2.x, authorization code with PKCE S256, a public client).
import {
  AppError,
  codeChallenge,
  configuredEhr,
  endpointOf,
  loadConfig,
  randomToken,
  rememberSignIn,
  scopeFor,
} from "./smart.js";

async function discover(ehr) {
  let response;
  try {
    response = await fetch(`${ehr.iss}/.well-known/smart-configuration`, {
      headers: { Accept: "application/json" },
    });
  } catch {
    throw new AppError("The EHR could not be reached.");
  }
  if (!response.ok) throw new AppError("The EHR did not give its SMART configuration.");
  const found = await response.json();
  const methods = found.code_challenge_methods_supported;
  if (Array.isArray(methods) && !methods.includes("S256")) {
    throw new AppError("The EHR does not support PKCE with S256, which this app requires.");
  }
  return {
    authorize: endpointOf(ehr, found.authorization_endpoint),
    token: endpointOf(ehr, found.token_endpoint),
  };
}

// The page reads the EHR and the context the server checked: a launch naming either twice is
// refused by both (which value counts would be a guess).
function onceEach(params) {
  if (params.getAll("iss").length > 1 || params.getAll("launch").length > 1) {
    throw new AppError("The launch names its EHR or its context more than once: launch the app again.");
  }
}

async function launch() {
  const params = new URLSearchParams(window.location.search);
  onceEach(params);
  const config = await loadConfig();
  const iss = params.get("iss") || (config.apps[0] && config.apps[0].iss);
  const ehr = configuredEhr(config, iss);
  const launchContext = params.get("launch");
  const endpoints = await discover(ehr);
  const verifier = randomToken(48);
  const state = randomToken(24);
  const redirectUri = new URL(config.redirect_path, window.location.origin).href;
  rememberSignIn(state, {
    iss: ehr.iss,
    clientId: ehr.client_id,
    verifier,
    tokenEndpoint: endpoints.token,
    redirectUri,
  });
  const query = {
    response_type: "code",
    client_id: ehr.client_id,
    redirect_uri: redirectUri,
    scope: scopeFor(ehr.scope, Boolean(launchContext)),
    state,
    aud: ehr.iss,
    code_challenge: await codeChallenge(verifier),
    code_challenge_method: "S256",
  };
  if (launchContext) query.launch = launchContext;
  const authorize = new URL(endpoints.authorize);
  for (const [name, value] of Object.entries(query)) authorize.searchParams.set(name, value);
  window.location.assign(authorize.href);
}

launch().catch((error) => {
  document.getElementById("status").hidden = true;
  const shown = document.getElementById("error");
  shown.textContent =
    error instanceof AppError ? error.message : "The app could not start the sign-in.";
  shown.hidden = false;
});
