/**
 * opensrf.xml as a settings tree, converted and merged the way OpenSRF's settings server
 * (`opensrf.settings`, Perl OpenSRF::Utils::SettingsParser) does, and looked up by path.
 */
import { ConfigError } from "./errors.ts";
import type { SettingsTree, SettingsValue } from "./types.ts";
import { parseXml, readXmlFile, type XmlElement } from "./xml.ts";

/** Options for converting opensrf.xml. */
export interface SettingsReadOptions {
  /**
   * Turn texts of 1–10 digits into numbers, as the Perl server does before sending JSON
   * (sample: `"max_children":15`). Default false: every text stays a string and readers
   * such as {@link readPreforkSettings} convert (they accept both forms).
   */
  perlNumbers?: boolean;
}

/**
 * Reads opensrf.xml and converts the whole document (root element included) to a tree:
 * `{default: {...}, hosts: {...}, version: "0.0.3"}` for the sample.
 * @throws ConfigError for an unreadable or malformed file, or a root other than `<opensrf>`.
 */
export function readSettingsFile(file: string, options: SettingsReadOptions = {}): SettingsTree {
  return settingsFromDocument(readXmlFile(file), file, options);
}

/** Same as {@link readSettingsFile} for XML already in memory. */
export function readSettingsFromString(
  xml: string,
  file = "opensrf.xml",
  options: SettingsReadOptions = {},
): SettingsTree {
  return settingsFromDocument(parseXml(xml, file), file, options);
}

function settingsFromDocument(root: XmlElement, file: string, options: SettingsReadOptions): SettingsTree {
  // The settings server looks up /opensrf/default and /opensrf/hosts/<host>; any other
  // root yields nothing, which is never what the operator meant.
  if (root.name !== "opensrf") {
    throw new ConfigError({
      file,
      path: root.path,
      problem: `root element is <${root.name}>`,
      expected: "<opensrf> with <default> and <hosts> children",
      fix: "pass opensrf.xml, not opensrf_core.xml",
    });
  }
  const tree = xmlToSettings(root, options);
  return isTree(tree) ? tree : {};
}

/**
 * Converts one element the way Perl's `XML2perl` does:
 * - an element whose only content is text becomes that text (its attributes are dropped);
 * - otherwise an object: attributes first, then one key per child element, a repeated
 *   name becoming an array in document order (an attribute and a child of the same name
 *   also make an array);
 * - an empty element becomes `{}` (so `<activeapps/>` is an empty object, not "").
 * Differences, deliberate: comments are ignored everywhere (Perl turns `<x>5<!-- c --></x>`
 * into `{}`), and stray text beside child elements is dropped (Perl adds `"text": {}`).
 */
export function xmlToSettings(el: XmlElement, options: SettingsReadOptions = {}): SettingsValue {
  const scalar = (text: string): string | number =>
    options.perlNumbers && /^\d{1,10}\n?$/.test(text) ? Number(text) : text;

  if (el.children.length === 0 && el.text !== "") return scalar(el.text);

  const out: SettingsTree = {};
  const add = (key: string, value: SettingsValue): void => {
    if (!Object.hasOwn(out, key)) setKey(out, key, value);
    else {
      const prev = out[key] as SettingsValue;
      if (Array.isArray(prev)) prev.push(value);
      else setKey(out, key, [prev, value]);
    }
  };
  for (const [name, value] of Object.entries(el.attributes)) add(name, scalar(value));
  for (const child of el.children) add(child.name, xmlToSettings(child, options));
  return out;
}

/**
 * The host config the settings server returns for `opensrf.settings.host_config.get`:
 * `/opensrf/default` overlaid by `/opensrf/hosts/<host>`.
 *
 * Matches Perl's `get_server_config`/`merge_perl`: objects merge key by key, recursively
 * where both sides are objects (or both arrays); arrays merge **index by index**, so a
 * host list shorter than the default's keeps the default's tail; anything else is
 * replaced by the host's value. A `host` containing commas names several hosts (Perl's
 * workaround for odd FQDNs), overlaid in document order. An unknown host gets the default
 * config alone, exactly as the real server answers (no error): check
 * {@link settingsHostNames} to warn about it.
 * Unlike Perl (document order), `<default>` is always applied first.
 * @param tree Result of {@link readSettingsFile}. Not modified.
 */
export function hostConfig(tree: SettingsTree, host: string): SettingsTree {
  const wanted = new Set(host.split(","));
  const layers: SettingsValue[] = [...asList(own(tree, "default"))];
  for (const hostsEl of asList(own(tree, "hosts"))) {
    if (!isTree(hostsEl)) continue;
    for (const name of Object.keys(hostsEl)) {
      if (wanted.has(name)) layers.push(...asList(hostsEl[name] as SettingsValue));
    }
  }
  if (layers.length === 0) return {};
  let merged = structuredClone(layers[0] as SettingsValue);
  for (const layer of layers.slice(1)) merged = mergePerl(merged, structuredClone(layer));
  return isTree(merged) ? merged : {};
}

/** Host names defined under `/opensrf/hosts` of a settings tree. */
export function settingsHostNames(tree: SettingsTree): string[] {
  const names: string[] = [];
  for (const hostsEl of asList(own(tree, "hosts"))) {
    if (isTree(hostsEl)) names.push(...Object.keys(hostsEl));
  }
  return names;
}

/**
 * Looks a slash path up in a tree, e.g. `/apps/opensrf.math/unix_config/min_children`.
 * Numeric segments index arrays. Returns undefined when any step is missing.
 */
export function lookup(tree: SettingsTree, path: string): SettingsValue | undefined {
  let cur: SettingsValue | undefined = tree;
  for (const step of path.split("/")) {
    if (step === "") continue;
    if (isTree(cur)) cur = own(cur, step);
    else if (Array.isArray(cur) && /^\d+$/.test(step)) cur = cur[Number(step)];
    else return undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

function mergePerl(base: SettingsValue, overlay: SettingsValue): SettingsValue {
  if (isTree(base) && isTree(overlay)) {
    for (const key of Object.keys(overlay)) {
      const b = own(base, key);
      const o = overlay[key] as SettingsValue;
      if (b !== undefined && sameContainer(b, o)) mergePerl(b, o);
      else setKey(base, key, o);
    }
    return base;
  }
  if (Array.isArray(base) && Array.isArray(overlay)) {
    overlay.forEach((o, i) => {
      const b = base[i];
      if (b !== undefined && sameContainer(b, o)) mergePerl(b, o);
      else base[i] = o;
    });
    return base;
  }
  return overlay;
}

function sameContainer(a: SettingsValue, b: SettingsValue): boolean {
  return (isTree(a) && isTree(b)) || (Array.isArray(a) && Array.isArray(b));
}

/** True for a settings subtree (not a scalar, not a list). */
export function isTree(value: SettingsValue | undefined): value is SettingsTree {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asList(value: SettingsValue | undefined): SettingsValue[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Own keys only: a setting named "constructor" must not find Object's. */
function own(tree: SettingsTree, key: string): SettingsValue | undefined {
  return Object.hasOwn(tree, key) ? tree[key] : undefined;
}

function setKey(tree: SettingsTree, key: string, value: SettingsValue): void {
  // "__proto__" would replace the prototype on plain assignment.
  if (key === "__proto__") {
    Object.defineProperty(tree, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    tree[key] = value;
  }
}

/** A scalar setting as trimmed text; undefined when absent, empty or not a scalar. */
export function settingText(v: SettingsValue | undefined): string | undefined {
  if (typeof v === "number") return String(v);
  if (typeof v !== "string") return undefined;
  const t = v.trim();
  return t === "" ? undefined : t;
}
