// How an integrator uses the generated types (build/types.ts): a request body built from the
// API's own example, typed fields read from a response. `make typescript-client` type-checks it
// (strict) together with every documented example (build/spec_examples.ts).
import type { components, operations } from "./build/types";
import {
  evaluateScreeningRequestAdultIopSuitable,
  evaluateScreeningResponse200AdultIopSuitable,
} from "./build/spec_examples";

type ScreeningRequest = components["schemas"]["ScreeningRequest"];
type Evaluation =
  operations["evaluateScreening"]["responses"][200]["content"]["application/json"];

// The documented intake, decided by a pinned rule-set version.
export const pinned: ScreeningRequest = {
  ...evaluateScreeningRequestAdultIopSuitable,
  rule_set: { owner: "shared", key: "iop-level-of-care", version: 1 },
};

// The types refuse what the API refuses: an age group it does not know.
export const refused: ScreeningRequest = {
  answers: {
    ...pinned.answers,
    // @ts-expect-error: "adult" is no age group
    respondent: { age_group: "senior", answered_by: "self_report" },
  },
};

// What an intake app shows of a determination.
export function headline(evaluation: Evaluation): string {
  const { determination, rule_set } = evaluation;
  const level = determination.recommended_level?.label ?? "no level yet: more answers needed";
  const missing = determination.missing.length;
  return `${level} (${determination.urgency}; ${missing} missing), decided by ${rule_set.key} version ${rule_set.version}`;
}

export const shown: string = headline(evaluateScreeningResponse200AdultIopSuitable);
