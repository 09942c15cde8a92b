// A unit's log as the published clients keep it: one compact JSON line per entry
// (`level`, `text`, `create_datetime` as epoch ms, `free_mem`), the last
// PU_MAX_LOG_LENGTH lines kept for LogSync, entries below PU_MIN_LOG_LEVEL dropped.

export const LEVELS = ["Debug", "Info", "Warning", "Error", "Critical"] as const;
export type LogLevel = (typeof LEVELS)[number];

export type LogEntry = { level: LogLevel; text: string; create_datetime: number; free_mem: number };

const rank = (level: string) => {
  const i = LEVELS.findIndex((l) => l.toLowerCase() === level.toLowerCase());
  return i === -1 ? 0 : i;
};

export class DeviceLog {
  private lines: string[] = [];
  minLevel = "Debug";
  maxLines = 64;

  /** Returns the JSON line, or null when the level is below the minimum. */
  add(level: LogLevel, text: string, freeMem: number): { entry: LogEntry; line: string } | null {
    if (rank(level) < rank(this.minLevel)) return null;
    const entry: LogEntry = { level, text, create_datetime: Date.now(), free_mem: freeMem };
    const line = JSON.stringify(entry);
    this.lines.push(line);
    if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
    return { entry, line };
  }

  /** The kept lines, oldest first (what LogSync publishes). */
  recent(): string[] {
    return [...this.lines];
  }
}
