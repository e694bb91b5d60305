/**
 * opensrf.xml as the Perl settings server (OpenSRF::Utils::SettingsParser) answers from
 * it: Perl numbers (texts of 1–10 digits become numbers), host configs merged over
 * `/opensrf/default`, and XPath look-ups converted node by node.
 */
import { readFileSync } from "node:fs";
import { unreadableFileError } from "../config/errors.ts";
import { hostConfig, readSettingsFromString, settingsHostNames, xmlToSettings } from "../config/settings.ts";
import type { SettingsTree, SettingsValue } from "../config/types.ts";
import { parseXml } from "../config/xml.ts";
import { evaluate, indexDocument, type XNode, type XPathMatch } from "./xpath.ts";

const PERL = { perlNumbers: true } as const;

/** Perl's `_check_for_int`. */
function perlScalar(text: string): string | number {
  return /^\d{1,10}\n?$/.test(text) ? Number(text) : text;
}

/** One parse of opensrf.xml, queried as the settings server's methods do. */
export class SettingsDocument {
  private constructor(
    /** The file it was read from. */
    readonly file: string,
    private readonly tree: SettingsTree,
    private readonly doc: XNode,
  ) {}

  /**
   * Reads and parses `file`.
   * @throws ConfigError for an unreadable or malformed file, or a root other than `<opensrf>`.
   */
  static load(file: string): SettingsDocument {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw unreadableFileError(file, e);
    }
    // Converted once for the merged look-ups, kept as elements for XPath.
    const tree = readSettingsFromString(text, file, PERL);
    return new SettingsDocument(file, tree, indexDocument(parseXml(text, file)));
  }

  /**
   * `opensrf.settings.host_config.get`: `/opensrf/default` overlaid by
   * `/opensrf/hosts/<host>`; null when the file has neither (Perl answers undef).
   */
  hostConfig(host: string): SettingsTree | null {
    const known = host.split(",").some((h) => settingsHostNames(this.tree).includes(h));
    if (!known && !Object.hasOwn(this.tree, "default")) return null;
    return hostConfig(this.tree, host);
  }

  /** `opensrf.settings.default_config.get`: `/opensrf/default` alone, or null. */
  defaultConfig(): SettingsTree | null {
    if (!Object.hasOwn(this.tree, "default")) return null;
    return hostConfig({ default: this.tree.default as SettingsValue }, "");
  }

  /**
   * `opensrf.settings.xpath.get`: every node `expr` selects (absolute, or relative to
   * `<opensrf>`), each converted on its own, in document order; [] when nothing matches.
   * @throws XPathError for an expression outside the supported subset.
   */
  xpath(expr: string): SettingsValue[] {
    return evaluate(this.doc, expr).map((m) => this.convert(m));
  }

  private convert(m: XPathMatch): SettingsValue {
    switch (m.kind) {
      case "attribute":
        return perlScalar(m.value);
      case "element":
        return xmlToSettings(m.node.el, PERL);
      case "document":
        // Perl converts the document node as an element holding the root.
        return { [m.node.el.name]: xmlToSettings(m.node.el, PERL) };
    }
  }
}
