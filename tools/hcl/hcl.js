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
        fail(`expression ${i + 1}: not valid HCL: ${String(e && e.message ? e.message : e).trim()}`);
      }
    }
    process.stdout.write(JSON.stringify(values) + "\n");
    return;
  }
  if ((cmd !== "parse" && cmd !== "fmt") || files.length === 0) {
    fail("usage: hcl.js parse|fmt FILE... | hcl.js expr < expressions.json");
  }
  const out = {};
  if (cmd === "parse") {
    const { parse } = load("@cdktf/hcl2json");
    for (const f of files) {
      let text;
      try {
        text = fs.readFileSync(f, "utf8");
      } catch (e) {
        fail(`${f}: ${e.message}`);
      }
      try {
        out[f] = await parse(path.basename(f), text);
      } catch (e) {
        fail(`${f}: not valid HCL: ${String(e && e.message ? e.message : e).trim()}`);
      }
    }
  } else {
    const { format } = load("@cdktf/hcl-tools");
    const { parse } = load("@cdktf/hcl2json");
    for (const f of files) {
      let text;
      try {
        text = fs.readFileSync(f, "utf8");
      } catch (e) {
        fail(`${f}: ${e.message}`);
      }
      // hclwrite formats what it can tokenize even when it does not parse:
      // refuse broken files first, so "formatted" means a real HCL file.
      try {
        await parse(path.basename(f), text);
      } catch (e) {
        fail(`${f}: not valid HCL: ${String(e && e.message ? e.message : e).trim()}`);
      }
      const expected = await format(text);
      out[f] = { formatted: expected === text, expected };
    }
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => fail(String(e && e.stack ? e.stack : e)));
