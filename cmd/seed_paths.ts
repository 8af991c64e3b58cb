/**
 * Where a control node looks for its CA seed files: the root certificate and key named in
 * control.yaml, and the intermediate pair of an offline root, by default beside the root
 * certificate. One place, so `skein control` and `skein control --check` agree.
 * @module
 */
import { dirOf } from "../common/atomic_write.ts";
import { INTERMEDIATE_CERT_FILE, INTERMEDIATE_KEY_FILE } from "../control/ca/mod.ts";

/** The seed paths of a control node's `tls:` section. */
export interface SeedPaths {
  /** `tls.ca_cert_file`: the root certificate. */
  certFile: string;
  /** `tls.ca_key_file`: the root key (absent with an offline root). */
  keyFile: string;
  /** The intermediate certificate of an offline root. */
  intermediateCertFile: string;
  /** The intermediate's key. */
  intermediateKeyFile: string;
}

/** The seed paths, with the intermediate files beside `ca_cert_file` unless named. */
export function seedPaths(tls: {
  ca_cert_file: string;
  ca_key_file: string;
  intermediate_cert_file?: string | undefined;
  intermediate_key_file?: string | undefined;
}): SeedPaths {
  const dir = dirOf(tls.ca_cert_file);
  const join = (name: string) => dir === "/" ? `/${name}` : `${dir}/${name}`;
  return {
    certFile: tls.ca_cert_file,
    keyFile: tls.ca_key_file,
    intermediateCertFile: tls.intermediate_cert_file ?? join(INTERMEDIATE_CERT_FILE),
    intermediateKeyFile: tls.intermediate_key_file ?? join(INTERMEDIATE_KEY_FILE),
  };
}
