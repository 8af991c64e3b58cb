/**
 * The X.509 library, loaded after the `Reflect.getMetadata` polyfill its dependency injection
 * container (tsyringe) insists on at import time. Import x509 only through this file.
 * @module
 */
import "npm:reflect-metadata@0.2.2";
export * from "npm:@peculiar/x509@2.2.0";
