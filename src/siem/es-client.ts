import { Client, SniffingTransport, type ClientOptions } from '@elastic/elasticsearch';

/**
 * Client 9 asks for the 9.x REST API (`compatible-with=9`), which an 8.x cluster refuses. Plain JSON
 * media types ask each cluster for its own major, which both 8.x and 9.x serve, so one client
 * covers both; the APIs Cordon calls (bulk, index, search, index templates) have the same shape in 8
 * and 9.
 */
class NativeVersionTransport extends SniffingTransport {
  constructor(opts: ConstructorParameters<typeof SniffingTransport>[0]) {
    super({
      ...opts,
      vendoredHeaders: {
        jsonContentType: 'application/json',
        ndjsonContentType: 'application/x-ndjson',
        accept: 'application/json, text/plain',
      },
    });
  }
}

/** An Elasticsearch client for an 8.x or 9.x cluster. */
export function createEsClient(options: ClientOptions): Client {
  return new Client({ ...options, Transport: NativeVersionTransport });
}
