// Numbers as the commands print them: thousands grouped, the same in every locale.

/** 65536 -> "65,536". */
export function group(value: number | bigint): string {
  return value.toLocaleString('en-US');
}
