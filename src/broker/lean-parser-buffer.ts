import type { Client } from "aedes";
import bl from "bl";

// mqtt-packet's parser keeps a connection's unparsed bytes in a BufferListStream: a
// whole Duplex stream (two stream states, an event table) per connection, ~0.6 KB of
// the 10–13 KB an idle device costs, for a list of buffers it only appends to, reads
// and consumes. The plain BufferList of the same package has those methods, without the
// stream. Aedes gives no way to choose the parser's list, so it is swapped on the new
// client, before any byte reached it; after a parse error mqtt-packet makes a stream
// again, and the connection is closed anyway.

type ParserList = { _bufs?: unknown; length?: unknown };

/** Swaps the client's parser list for a plain BufferList; false if the parser differs. */
export function leanParserBuffer(client: Client): boolean {
  const parser = (client as unknown as { _parser?: { _list?: ParserList } })._parser;
  const list = parser?._list;
  if (!parser || !list || !Array.isArray(list._bufs) || typeof list.length !== "number") {
    return false;
  }
  const lean = new bl.BufferList();
  for (const buf of list._bufs as Buffer[]) lean.append(buf);
  parser._list = lean as unknown as ParserList;
  return true;
}
