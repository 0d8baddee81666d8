// Offline checks for deploy.helm (tests/helm/test_helm.py):
//
//   node check.mjs REQUEST.json
//
// REQUEST is {"schema": "values.schema.json", "values": [files], "manifests": [files]}.
// Each values file is checked against the chart's values.schema.json (JSON
// schema draft-07, as Helm does, with ajv); each document of each rendered
// manifest file against the Kubernetes schemas of kubernetes-models (and the
// prometheus-operator CRDs of @kubernetes-models/prometheus-operator). Prints
// one JSON object: {"values": {file: [errors]}, "manifests": {file: [{apiVersion,
// kind, name, errors}]}}; the Python test decides what must pass and what must
// fail. Exit status 2 only when the checks themselves cannot run.
import { readFileSync } from "node:fs";
import Ajv from "ajv";
import { parseAllDocuments } from "yaml";

function errorsOf(e) {
  if (e && Array.isArray(e.errors)) {
    return e.errors.map((x) => `${x.instancePath || "/"} ${x.message}`);
  }
  return [String(e && e.message ? e.message : e)];
}

function parseFile(file) {
  const docs = [];
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
    const v = doc.toJS();
    if (v !== null && v !== undefined) docs.push(v);
  }
  return docs;
}

// "apps/v1" -> kubernetes-models/apps/v1, "v1" -> kubernetes-models/v1.
async function modelClass(apiVersion, kind) {
  const mod = apiVersion.startsWith("monitoring.coreos.com/")
    ? `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`
    : `kubernetes-models/${apiVersion}/${kind}`;
  const m = await import(mod);
  if (!m[kind]) throw new Error(`${mod} has no ${kind}`);
  return m[kind];
}

async function main() {
  const req = JSON.parse(readFileSync(process.argv[2], "utf8"));
  const out = { values: {}, manifests: {} };

  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(JSON.parse(readFileSync(req.schema, "utf8")));
  for (const file of req.values) {
    const [v] = parseFile(file);
    out.values[file] = validate(v ?? {}) ? [] : errorsOf({ errors: validate.errors });
  }

  for (const file of req.manifests) {
    const results = [];
    for (const obj of parseFile(file)) {
      const r = {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata && obj.metadata.name,
        errors: [],
      };
      try {
        const Model = await modelClass(String(obj.apiVersion), String(obj.kind));
        new Model(obj).validate();
      } catch (e) {
        r.errors = errorsOf(e);
      }
      results.push(r);
    }
    out.manifests[file] = results;
  }
  process.stdout.write(JSON.stringify(out, null, 1) + "\n");
}

main().catch((e) => {
  process.stderr.write(`check.mjs: ${e.stack || e}\n`);
  process.exit(2);
});
