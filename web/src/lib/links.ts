import { api, type UnitNodeEdge, unwrap } from "./api.ts";
import { ApiError } from "./api-errors.ts";
import { graph } from "./graph.svelte.ts";
import { ui } from "./ui.svelte.ts";

// Creating and removing data links from anywhere in the UI (drag, keyboard
// picker, pop-ups), with the refusal shown on the input and an Undo after a removal.

/** Links an output into an input; a refusal is shown on the input and in a notice. */
export async function createLink(outputUuid: string, inputUuid: string): Promise<boolean> {
  try {
    const edge = await unwrap(
      api.POST("/unit_node_edges", { body: { output_uuid: outputUuid, input_uuid: inputUuid } }),
    );
    graph.addLink(edge);
    graph.flagInput(inputUuid, null);
    ui.notify("success", "Linked.");
    return true;
  } catch (err) {
    // The refusal (access, not rewritable, already linked) is shown on the input itself.
    const text = err instanceof ApiError ? err.message : String(err);
    graph.flagInput(inputUuid, text);
    ui.notify("error", `Link refused: ${text}`);
    return false;
  }
}

/** How long a removal may be undone. */
export const UNDO_MS = 8000;

/** Tells about removed links and offers to draw them again. */
export function offerUndo(removed: Array<Pick<UnitNodeEdge, "output_uuid" | "input_uuid">>): void {
  const again = removed.filter((l): l is { output_uuid: string; input_uuid: string } =>
    Boolean(l.input_uuid),
  );
  const text = removed.length === 1 ? "Link removed." : `${removed.length} links removed.`;
  if (!again.length) {
    ui.notify("success", text);
    return;
  }
  ui.notify("success", `${text} Ctrl+Z undoes it.`, UNDO_MS, {
    label: "Undo",
    run: () => {
      for (const l of again) void createLink(l.output_uuid, l.input_uuid);
    },
  });
}

/** Removes one link (a pop-up's Remove button); throws the server's refusal. */
export async function removeLink(link: UnitNodeEdge): Promise<void> {
  await unwrap(api.DELETE("/unit_node_edges/{uuid}", { params: { path: { uuid: link.uuid } } }));
  graph.removeLinks([link.uuid]);
  offerUndo([link]);
}
