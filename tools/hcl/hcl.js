#!/usr/bin/env node
// HCL for the Terraform checks (spec/terraform_spec.lua), with HashiCorp's own
// Go hcl/v2 library compiled to WebAssembly by the npm packages @cdktf/hcl2json
// (parser: hclsyntax, rendered as JSON) and @cdktf/hcl-tools (hclwrite.Format,
// the formatter `terraform fmt` is built on).
//
//   node tools/hcl/hcl.js parse FILE...   one JSON object on stdout:
//                                          {"<file>": <the file as JSON>, ...}
//   node tools/hcl/hcl.js fmt FILE...     one JSON object on stdout:
//                                          {"<file>": {"formatted": bool, "expected": "<text>"}}
//   node tools/hcl/hcl.js expr            stdin: a JSON array of HCL expressions (such as
//                                          the object inside a jsonencode(...)); stdout: a
//                                          JSON array of each one parsed the same way
// Exit 0 when every file was read and parsed; 1 with "hcl.js: <file>: <why>" on
// stderr otherwise (a syntax error names the file, line and column).
"use strict";

const fs = require("fs");
const path = require("path");

function fail(msg) {
  process.stderr.write("hcl.js: " + msg + "\n");
  process.exit(1);
}

// What an hcl2json error says.
function why(e) {
  return String(e && e.message ? e.message : e).trim();
}

// File f's text and what hcl2json's parse makes of it, or exit 1 naming the file.
async function readParsed(parse, f) {
  let text, doc;
  try {
    text = fs.readFileSync(f, "utf8");
  } catch (e) {
    fail(`${f}: ${e.message}`);
  }
  try {
    doc = await parse(path.basename(f), text);
  } catch (e) {
    fail(`${f}: not valid HCL: ${why(e)}`);
  }
  return { text, doc };
}

function load(name) {
  try {
    return require(name);
  } catch (e) {
    fail(`${name} is not installed: run \`npm ci\` in ${__dirname} (make hcl-deps does)`);
  }
  return null;
}

async function main() {
  const [cmd, ...files] = process.argv.slice(2);
  if (cmd === "expr" && files.length === 0) {
    const { parse } = load("@cdktf/hcl2json");
    let exprs;
    try {
      exprs = JSON.parse(fs.readFileSync(0, "utf8"));
    } catch (e) {
      fail(`expr: stdin is not a JSON array of strings: ${e.message}`);
    }
    if (!Array.isArray(exprs)) fail("expr: stdin is not a JSON array of strings");
    const values = [];
    for (const [i, x] of exprs.entries()) {
      try {
        values.push((await parse(`expr${i + 1}.tf`, `value = ${x}\n`)).value);
      } catch (e) {
        fail(`expression ${i + 1}: not valid HCL: ${why(e)}`);
      }
    }
    process.stdout.write(JSON.stringify(values) + "\n");
    return;
  }
  if ((cmd !== "parse" && cmd !== "fmt") || files.length === 0) {
    fail("usage: hcl.js parse|fmt FILE... | hcl.js expr < expressions.json");
  }
  const out = {};
  const { format } = cmd === "fmt" ? load("@cdktf/hcl-tools") : {};
  const { parse } = load("@cdktf/hcl2json");
  for (const f of files) {
    // fmt parses too: hclwrite formats what it can tokenize even when it does
    // not parse, so broken files are refused first and "formatted" means a
    // real HCL file.
    const { text, doc } = await readParsed(parse, f);
    if (cmd === "parse") {
      out[f] = doc;
    } else {
      const expected = await format(text);
      out[f] = { formatted: expected === text, expected };
    }
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => fail(String(e && e.stack ? e.stack : e)));
