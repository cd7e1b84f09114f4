// Marks one symbol-version requirement of an ELF64 shared library as weak (VER_FLG_WEAK).
//
// Why: TorchSharp 0.107.0's libLibTorchSharp.so declares a need for GLIBCXX_3.4.32 (GCC 13), but the only symbol behind
// it, std::ios_base_library_init(), is a link-time anchor that is never called. On Debian 12 / Ubuntu 22.04 (libstdc++
// up to 3.4.30) the loader refuses the library. A weak requirement lets the loader accept it when the version is absent.
// The build patches the copy in the output folder, never the NuGet cache. This file is compiled twice: as an inline
// MSBuild task (eng/TorchSharpLoad.targets) and into the Inference tests (with ELF_PATCHER_NO_TASK), which check it on
// the real library.
using System;
using System.IO;
using System.Text;

namespace FlexPrefill.Build
{
    public static class ElfVersionPatcher
    {
        const uint ShtGnuVerneed = 0x6ffffffe;
        const ushort VerFlagWeak = 0x2;

        /// <summary>Outcome of <see cref="MakeVersionWeak"/>.</summary>
        public enum Result { Patched, AlreadyWeak, NotRequired }

        /// <summary>Sets VER_FLG_WEAK on every requirement of <paramref name="version"/> in the ELF64 file at <paramref name="path"/>.</summary>
        public static Result MakeVersionWeak(string path, string version)
        {
            byte[] elf = File.ReadAllBytes(path);
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException(path + " is not an ELF file");
            if (elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException(path + " is not a little-endian ELF64 file");

            ulong shoff = BitConverter.ToUInt64(elf, 0x28);
            int shentsize = BitConverter.ToUInt16(elf, 0x3a);
            int shnum = BitConverter.ToUInt16(elf, 0x3c);
            bool found = false, changed = false;
            for (int i = 0; i < shnum; i++)
            {
                int sh = checked((int)shoff + i * shentsize);
                if (BitConverter.ToUInt32(elf, sh + 4) != ShtGnuVerneed) continue;
                int offset = (int)BitConverter.ToUInt64(elf, sh + 0x18);
                int link = (int)BitConverter.ToUInt32(elf, sh + 0x28);
                int strtab = (int)BitConverter.ToUInt64(elf, checked((int)shoff + link * shentsize) + 0x18);

                // Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32.
                // Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32.
                for (int vn = offset; ; )
                {
                    int count = BitConverter.ToUInt16(elf, vn + 2);
                    int aux = vn + (int)BitConverter.ToUInt32(elf, vn + 8);
                    for (int a = 0; a < count; a++)
                    {
                        if (ReadCString(elf, strtab + (int)BitConverter.ToUInt32(elf, aux + 8)) == version)
                        {
                            found = true;
                            ushort flags = BitConverter.ToUInt16(elf, aux + 4);
                            if ((flags & VerFlagWeak) == 0)
                            {
                                BitConverter.GetBytes((ushort)(flags | VerFlagWeak)).CopyTo(elf, aux + 4);
                                changed = true;
                            }
                        }
                        aux += (int)BitConverter.ToUInt32(elf, aux + 12);
                    }
                    uint next = BitConverter.ToUInt32(elf, vn + 12);
                    if (next == 0) break;
                    vn += (int)next;
                }
            }
            if (!found) return Result.NotRequired;
            if (!changed) return Result.AlreadyWeak;
            // Write beside and rename, so a process that has the old file mapped keeps a consistent view.
            string temp = path + ".patching";
            File.WriteAllBytes(temp, elf);
            File.Delete(path);
            File.Move(temp, path);
            return Result.Patched;
        }

        static string ReadCString(byte[] data, int start)
        {
            int end = Array.IndexOf(data, (byte)0, start);
            return Encoding.ASCII.GetString(data, start, end - start);
        }
    }

#if !ELF_PATCHER_NO_TASK
    /// <summary>MSBuild task: weakens <see cref="Version"/> in each of <see cref="Files"/>.</summary>
    public class WeakenElfVersion : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required] public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();
        [Microsoft.Build.Framework.Required] public string Version { get; set; } = "";

        public override bool Execute()
        {
            foreach (var file in Files)
            {
                var result = ElfVersionPatcher.MakeVersionWeak(file.ItemSpec, Version);
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, "{0}: {1} {2}", file.ItemSpec, Version, result);
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif
}
