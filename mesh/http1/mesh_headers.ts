/**
 * Header names skein itself puts on requests between proxies, in one low module so the router
 * that reads them and the TCP tunnel that writes them share one spelling.
 * @module
 */

/** Header naming the local service an inbound request is for. */
export const DESTINATION_HEADER = "x-skein-destination";
