"""Open formats of a narrated book, each built from one `BookSnapshot`: WebVTT read-along
(`vtt`), EPUB 3 with Media Overlays (`epub`), M4B with chapters (`m4b`) and the offline bundle
(`bundle`)."""
